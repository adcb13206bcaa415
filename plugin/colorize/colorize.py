#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""GIMP 3 entry: Filters > Colorize > Auto Colorize…, Colorize from Reference… and
Colorize All Layers….

Reads each layer through its GEGL buffer at the image's own precision (8-bit, 16-bit or
float; GEGL converts from the image's colour profile), asks the colorize daemon for
colour, and writes every result into a NEW layer directly above its source, at the same
precision, masked by the selection when there is one — all results of an image in one
undo step. Everything that can fail (the daemon's work) happens before the image is
touched.
"""

import gettext
import os
import random
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from colorize_client import BackendError, Client, load_config  # noqa: E402

_ = gettext.translation("gimp-colorize", os.path.join(HERE, "locale"), fallback=True).gettext

AUTO_PROC = "plug-in-colorize-auto"
REFERENCE_PROC = "plug-in-colorize-reference"
ALL_PROC = "plug-in-colorize-all"
BABL_CHANNELS = {"gray": "Y'", "graya": "Y'A", "rgb": "R'G'B'", "rgba": "R'G'B'A"}
BABL_SAMPLES = {"u8": "u8", "u16": "u16", "f32": "float"}
VARIANT_SATURATIONS = (1.0, 1.3, 0.75, 1.6)


def _error(procedure, message):
    return procedure.new_return_values(
        Gimp.PDBStatusType.EXECUTION_ERROR,
        GLib.Error.new_literal(GLib.quark_from_string("colorize"), message, 0),
    )


def _sample_of(image):
    """The protocol's sample type for an image's precision (GEGL converts to it)."""
    nick = image.get_precision().value_nick
    return "u8" if nick.startswith("u8") else "u16" if nick.startswith("u16") else "f32"


def _babl(fmt, sample):
    return BABL_CHANNELS[fmt] + " " + BABL_SAMPLES[sample]


def _read_layer(layer, sample):
    """(width, height, protocol format, bytes, offsets, sample) of a layer's pixels."""
    grey = layer.is_gray()
    alpha = layer.has_alpha()
    fmt = ("graya" if alpha else "gray") if grey else ("rgba" if alpha else "rgb")
    width, height = layer.get_width(), layer.get_height()
    rect = Gegl.Rectangle.new(0, 0, width, height)
    data = layer.get_buffer().get(rect, 1.0, _babl(fmt, sample), Gegl.AbyssPolicy.CLAMP)
    _, off_x, off_y = layer.get_offsets()
    return width, height, fmt, bytes(data), (off_x, off_y), sample


def _position_above(image, source, reference):
    """Where the result goes: directly above its source, and above the reference layer too
    when that lies over the source in the same group (else it would hide the result)."""
    position = image.get_item_position(source)
    if reference is not None and reference.get_image().get_id() == image.get_id():
        same_group = reference.get_parent() == source.get_parent()
        if same_group:
            position = min(position, image.get_item_position(reference))
    return position


def _insert_result(image, source, result, masked, reference=None):
    """A new layer above source (and a reference over it) holding one result; masked by
    the selection if asked."""
    name, fmt, sample, pixels = result
    width, height = source.get_width(), source.get_height()
    _, off_x, off_y = source.get_offsets()
    layer_type = Gimp.ImageType.RGBA_IMAGE if fmt == "rgba" else Gimp.ImageType.RGB_IMAGE
    layer = Gimp.Layer.new(image, name, width, height, layer_type, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, source.get_parent(), _position_above(image, source, reference))
    layer.set_offsets(off_x, off_y)
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), _babl(fmt, sample), pixels)
    buffer.flush()
    layer.update(0, 0, width, height)
    if masked:  # as GIMP's own filters: only the selection changes, feathering kept
        layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    return layer


def _write_results(image, results, reference=None):
    """Every (source, result) of one image as new layers, in one undo step."""
    masked = not Gimp.Selection.is_empty(image)
    image.undo_group_start()
    try:
        if image.get_base_type() != Gimp.ImageBaseType.RGB:
            image.convert_rgb()  # a grayscale image cannot hold a colour layer
        return [
            _insert_result(image, source, result, masked, reference) for source, result in results
        ]
    finally:
        image.undo_group_end()


def _ask(procedure, config):
    """The procedure's dialog; False when the user cancels it."""
    from gi.repository import GimpUi

    GimpUi.init("colorize")
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config)
    dialog.fill(None)
    try:
        return dialog.run()
    finally:
        dialog.destroy()


def _show_progress(share, done_before):
    """The daemon's stages move GIMP's progress bar within this layer's share of it."""

    def show(stage, done):
        Gimp.progress_set_text(_("Colorizing: %s") % stage)
        Gimp.progress_update(done_before + share * done)

    return show


def _detail_size(config):
    """The dialog's detail size; left at its default (the default model's own working size),
    each model works at its own."""
    chosen = config.get_property("detail-size")
    return None if chosen == config.find_property("detail-size").default_value else chosen


def _settings(config, with_reference):
    """The dialog's settings as the wire names them (colorize_client.OPTION_NAMES)."""
    model = config.get_property("model")
    settings = {
        "model": None if model == "default" else model,
        "saturation": config.get_property("saturation"),
        "detail_size": _detail_size(config),
    }
    if with_reference:  # how far the reference steers, and how to read it
        settings["strength"] = config.get_property("strength")
        settings["reference_mode"] = config.get_property("reference-mode")
    return settings


def _variants(settings, count, installed, default):
    """count (settings, label) pairs: the chosen model, then the other installed automatic
    models, then the chosen model at other saturations."""
    first = settings["model"] or default
    models = [settings["model"]] + [m for m in installed if m != first]
    variants = []
    for index in range(count):
        saturation = settings["saturation"]
        if index < len(models):
            model = models[index]
        else:
            model = settings["model"]
            saturation = min(2.0, saturation * VARIANT_SATURATIONS[index - len(models) + 1])
        label = "%s, saturation %.2g" % (model or first or _("default"), saturation)
        variants.append((dict(settings, model=model, saturation=saturation), label))
    return variants


def _colorize_layer(client, layer, sample, variants, reference, progress, keep=False):
    """The results (name, format, sample, pixels) of one layer, one per variant. With keep,
    the one result stays in the client's shared buffer (no copy) until client.release()."""
    width, height, fmt, pixels, offsets, _sample = _read_layer(layer, sample)
    results = []
    for settings, label in variants:
        reply, result = client.colorize(
            width, height, fmt, pixels, settings, reference=reference, offset=offsets,
            sample=sample, progress=progress,
        )  # fmt: skip
        name = layer.get_name() + " (colorized)"
        if len(variants) > 1:
            name = layer.get_name() + " (colorized: " + label + ")"
        if not keep:
            result = bytes(result)
            client.release()
        results.append((name, reply["format"], sample, result))
    return results


def _reference_of(config, sources, image):
    """The reference layer's pixels (or a message saying why it cannot serve). It may be a
    layer of another open image (a colour photo opened on its own): it is then read at its
    own image's precision and laid over the source's top-left corner."""
    reference = config.get_property("reference")
    if reference is None:
        return None, None
    if reference in sources:
        return None, _("The reference layer must be a different layer.")
    if reference.is_gray():
        return None, _(
            "The reference layer is in a greyscale image, so it has no colour. For an "
            "exemplar, open the colour photo as its own image (File > Open) and choose its "
            "layer as the reference; for painted hints, convert the image to RGB "
            "(Image > Mode > RGB) before painting.")  # fmt: skip
    own_image = reference.get_image()
    width, height, fmt, data, offsets, sample = _read_layer(reference, _sample_of(own_image))
    if own_image.get_id() != image.get_id():
        offsets = sources[0].get_offsets()[1:]
    return (width, height, fmt, data, offsets, sample), None


def _woken_client():
    """A client whose daemon is starting while the dialog is open (None if it cannot be)."""
    try:
        client = Client()
        client.wake()
        return client
    except BackendError:
        return None  # the reason is given when the colorization needs the daemon


def _colorize(procedure, run_mode, image, drawables, config, with_reference):
    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
        return _error(procedure, _("Select exactly one layer to colorize."))
    source = drawables[0]
    client = _woken_client() if run_mode == Gimp.RunMode.INTERACTIVE else None
    if run_mode == Gimp.RunMode.INTERACTIVE and not _ask(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    sample = _sample_of(image)
    reference, problem = _reference_of(config, [source], image) if with_reference else (None, None)
    if problem or (with_reference and reference is None):
        return _error(procedure, problem or _(
            "Choose a reference layer: a colour photo to borrow colours from, or a "
            "transparent layer with painted colour hints."))  # fmt: skip
    count = 1 if with_reference else config.get_property("variants")
    Gimp.progress_init(_("Colorizing %s") % source.get_name())
    try:
        client = client or Client()
        client.ensure_daemon(progress=Gimp.progress_set_text)
        settings = _settings(config, with_reference)
        variants = [(settings, "")]
        if count > 1:  # the other automatic models the daemon serves, then other saturations
            served = client.models()
            installed = [m["name"] for m in served if m["kind"] == "auto"]
            default = next((m["name"] for m in served if m.get("default")), None)
            variants = _variants(settings, count, installed, default)
        show = _show_progress(0.8, 0.1)
        results = _colorize_layer(client, source, sample, variants, reference, show, count == 1)
        reference_layer = config.get_property("reference") if with_reference else None
        _write_results(image, [(source, r) for r in results], reference_layer)
    except BackendError as exc:
        Gimp.progress_end()
        return _error(procedure, exc.message)
    finally:
        if client is not None:
            client.release()
    Gimp.progress_end()
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _layers_below(container):
    """Every paint layer inside container's layers and groups, top to bottom, except the
    results of earlier colorizations."""
    for layer in container:
        if layer.is_group():
            for child in _layers_below(layer.get_children()):
                yield child
        elif " (colorized" not in layer.get_name():
            yield layer


def _frames_of(image, animation):
    """The layers to colorize, top to bottom; as an animation's frames, bottom to top."""
    layers = list(_layers_below(image.get_layers()))
    return layers[::-1] if animation else layers


def _colorize_all(procedure, run_mode, image, drawables, config):
    woken = _woken_client() if run_mode == Gimp.RunMode.INTERACTIVE else None
    if run_mode == Gimp.RunMode.INTERACTIVE and not _ask(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    images = Gimp.get_images() if config.get_property("scope") == "open" else [image]
    animation = config.get_property("animation")
    # An animation's frames go from the bottom layer up: that is the order colour is carried in.
    work = [(img, _frames_of(img, animation)) for img in images]
    sources = [layer for _img, layers in work for layer in layers]
    reference, problem = _reference_of(config, sources, image)
    if problem:
        return _error(procedure, problem)
    settings = _settings(config, reference is not None)
    failures = []
    Gimp.progress_init(_("Colorizing %d layers") % len(sources))
    try:
        client = woken or Client()
        client.ensure_daemon(progress=Gimp.progress_set_text)
    except BackendError as exc:
        Gimp.progress_end()
        return _error(procedure, exc.message)
    done = 0
    for img, layers in work:
        sample = _sample_of(img)
        sequence = "gimp-%d-%d" % (img.get_id(), random.randint(0, 10**9)) if animation else None
        try:
            results = []
            for frame, layer in enumerate(layers):
                share = 1.0 / max(len(sources), 1)
                show = _show_progress(share, done * share)
                wanted = dict(settings, sequence=sequence, frame=frame) if sequence else settings
                results += [(layer, r) for r in _colorize_layer(
                    client, layer, sample, [(wanted, "")], reference, show)]  # fmt: skip
                done += 1
            _write_results(img, results, config.get_property("reference"))
        except BackendError as exc:  # this image stays as it was; the others go on
            failures.append("%s: %s" % (img.get_name(), exc.message))
    Gimp.progress_end()
    Gimp.displays_flush()
    if failures:
        return _error(procedure, _("Some images were left as they were:\n") + "\n".join(failures))
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def run_auto(procedure, run_mode, image, drawables, config, data):
    return _colorize(procedure, run_mode, image, drawables, config, with_reference=False)


def run_reference(procedure, run_mode, image, drawables, config, data):
    return _colorize(procedure, run_mode, image, drawables, config, with_reference=True)


def run_all(procedure, run_mode, image, drawables, config, data):
    return _colorize_all(procedure, run_mode, image, drawables, config)


def _choice(entries):
    choice = Gimp.Choice.new()
    for index, (nick, label, help_text) in enumerate(entries):
        choice.add(nick, index, label, help_text)
    return choice


def _default_label(models, default, with_reference):
    """What "Default" will run: with a reference, the model trained for its kind when one is
    installed (the daemon picks it), else the automatic default steered by the reference."""
    if not with_reference:
        return _("Default (%s)") % (default or "?")
    guided = {}
    for model in models:
        guided.setdefault(model.get("kind"), model["name"])
    exemplar = guided.get("exemplar") or _("%s, steered") % (default or "?")
    hints = guided.get("hint") or _("%s + painted colour spread along edges") % (default or "?")
    return _("Default (exemplar: %s; hints: %s)") % (exemplar, hints)


def _model_choice(models, default, with_reference):
    """The installed models (as install.py recorded them), the default one first; guided
    models (exemplar, hint) only where there is a reference to guide them."""
    label = _default_label(models, default, with_reference)
    entries = [("default", label, _("The recommended model for what the reference is"))]
    for model in models:
        if model.get("kind") != "auto" and not with_reference:
            continue
        entries.append((model["name"], "%s (%s)" % (model["name"], model["kind"]),
                        model.get("description", "")))  # fmt: skip
    return _choice(entries)


def _reference_modes():
    return _choice([
        ("detect", _("Detect"), _("Opaque photo = exemplar; mostly transparent = hints")),
        ("exemplar", _("Exemplar photo"), _("Borrow the colours of a similar photo")),
        ("hints", _("Painted hints"), _("Honour painted colour strokes and dots")),
    ])  # fmt: skip


def _add_common_arguments(procedure, config, with_reference):
    flags = GObject.ParamFlags.READWRITE
    models = config.get("models") or []
    choice = _model_choice(models, config.get("default_model"), with_reference)
    procedure.add_choice_argument("model", _("_Model"), _("Which colorizer runs"), choice,
                                  "default", flags)  # fmt: skip
    if with_reference:
        procedure.add_double_argument("strength", _("_Strength"),
                                      _("How far the reference steers the colour (0..1)"),
                                      0.0, 1.0, 1.0, flags)  # fmt: skip
    procedure.add_double_argument("saturation", _("Sa_turation"),
                                  _("Colour amount: 0 grey, below 1 muted, above 1 vivid (0..2)"),
                                  0.0, 2.0, 1.0, flags)  # fmt: skip
    default_size = (
        next(
            (m.get("input_size") for m in models if m.get("name") == config.get("default_model")),
            None,
        )
        or 256
    )
    procedure.add_int_argument("detail-size", _("_Detail size"),
                               _("Short side the network looks at, in pixels (%d: each model's "
                                 "own; smaller sees more context, larger finer detail)")
                               % default_size, 64, 2048, default_size, flags)  # fmt: skip


def _add_reference_arguments(procedure):
    flags = GObject.ParamFlags.READWRITE
    procedure.add_layer_argument("reference", _("_Reference layer"),
                                 _("Colour photo (exemplar) or transparent hint layer"),
                                 True, flags)  # fmt: skip
    procedure.add_choice_argument("reference-mode", _("Reference _is"),
                                  _("How to read the reference layer"), _reference_modes(),
                                  "detect", flags)  # fmt: skip


PROCEDURES = {
    AUTO_PROC: (run_auto, _("Auto _Colorize..."),
                _("Colorize a black-and-white photo with a neural network")),
    REFERENCE_PROC: (run_reference, _("Colorize from _Reference..."),
                     _("Colorize guided by a reference photo or a layer of painted colour hints")),
    ALL_PROC: (run_all, _("Colorize _All Layers..."),
               _("Colorize every layer of this image, or of every open image, at once")),
}  # fmt: skip


class Colorize(Gimp.PlugIn):
    def do_query_procedures(self):
        return list(PROCEDURES)

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        run, label, blurb = PROCEDURES[name]
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        mask = Gimp.ProcedureSensitivityMask
        procedure.set_sensitivity_mask(mask.ALWAYS if name == ALL_PROC else mask.DRAWABLE)
        procedure.set_menu_label(label)
        procedure.add_menu_path("<Image>/Filters/Colorize")
        procedure.set_documentation(blurb, _(
            "Adds each colorized result as a new layer above its source (masked by the "
            "selection); the originals are left untouched. Needs the colorize backend "
            "(installed by install.py)."), name)  # fmt: skip
        procedure.set_attribution(
            "GIMP Colorize contributors", "GIMP Colorize contributors", "2026"
        )
        try:
            config = load_config()
        except BackendError:
            config = {}
        if name == ALL_PROC:
            procedure.add_choice_argument("scope", _("Colorize _layers of"), _("Which images"),
                                          _choice([("image", _("This image"), ""),
                                                   ("open", _("All open images"), "")]),
                                          "image", GObject.ParamFlags.READWRITE)  # fmt: skip
            procedure.add_boolean_argument(
                "animation", _("_Frames of one animation"),
                _("The layers are frames (bottom layer first): each carries the colour of the "
                  "one before along the motion, so the animation does not flicker"),
                False, GObject.ParamFlags.READWRITE)  # fmt: skip
        if name != AUTO_PROC:
            _add_reference_arguments(procedure)
        _add_common_arguments(procedure, config, name != AUTO_PROC)
        if name == AUTO_PROC:
            procedure.add_int_argument("variants", _("_Variants"),
                                       _("Result layers to compare: other models, then other "
                                         "saturations"), 1, 4, 1,
                                       GObject.ParamFlags.READWRITE)  # fmt: skip
        return procedure


Gimp.main(Colorize.__gtype__, sys.argv)
