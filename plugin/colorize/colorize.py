#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""GIMP 3 entry: Filters > Colorize > Auto Colorize… and Colorize from Reference….

Reads the layer through its GEGL buffer, asks the colorize daemon for colour,
and writes the answer into a NEW layer directly above the source, inside one
undo group. Everything that can fail happens before the image is touched.
"""

import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from colorize_client import BackendError, Client  # noqa: E402

AUTO_PROC = "plug-in-colorize-auto"
REFERENCE_PROC = "plug-in-colorize-reference"
GEGL_FORMATS = {"rgb": "R'G'B' u8", "rgba": "R'G'B'A u8", "gray": "Y' u8", "graya": "Y'A u8"}


def _error(procedure, message):
    return procedure.new_return_values(
        Gimp.PDBStatusType.EXECUTION_ERROR,
        GLib.Error.new_literal(GLib.quark_from_string("colorize"), message, 0),
    )


def _read_layer(layer):
    """(width, height, protocol format, bytes, offsets) of a layer in its own channel layout."""
    grey = layer.is_gray()
    fmt = (
        ("graya" if layer.has_alpha() else "gray")
        if grey
        else ("rgba" if layer.has_alpha() else "rgb")
    )
    width, height = layer.get_width(), layer.get_height()
    rect = Gegl.Rectangle.new(0, 0, width, height)
    data = layer.get_buffer().get(rect, 1.0, GEGL_FORMATS[fmt], Gegl.AbyssPolicy.CLAMP)
    _, off_x, off_y = layer.get_offsets()
    return width, height, fmt, bytes(data), (off_x, off_y)


def _write_result(image, source, fmt, pixels):
    """Insert the colorized pixels as a new layer above source; one undo step."""
    width, height = source.get_width(), source.get_height()
    _, off_x, off_y = source.get_offsets()
    image.undo_group_start()
    try:
        if image.get_base_type() != Gimp.ImageBaseType.RGB:
            image.convert_rgb()  # a grayscale image cannot hold a colour layer
        layer_type = Gimp.ImageType.RGBA_IMAGE if fmt == "rgba" else Gimp.ImageType.RGB_IMAGE
        layer = Gimp.Layer.new(
            image,
            source.get_name() + " (colorized)",
            width,
            height,
            layer_type,
            100.0,
            Gimp.LayerMode.NORMAL,
        )
        image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
        layer.set_offsets(off_x, off_y)
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, width, height), GEGL_FORMATS[fmt], pixels)
        buffer.flush()
        layer.update(0, 0, width, height)
    finally:
        image.undo_group_end()
    return layer


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


def _colorize(procedure, run_mode, image, drawables, config, with_reference):
    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
        return _error(procedure, "Select exactly one layer to colorize.")
    source = drawables[0]
    if run_mode == Gimp.RunMode.INTERACTIVE and not _ask(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())

    reference = None
    if with_reference:
        ref_layer = config.get_property("reference")
        if ref_layer is None:
            return _error(
                procedure,
                "Choose a reference layer: a colour photo to borrow colours "
                "from, or a transparent layer with painted colour hints.",
            )
        if ref_layer == source:
            return _error(procedure, "The reference layer must be a different layer.")
        reference = _read_layer(ref_layer) + ("u8",)

    Gimp.progress_init("Colorizing " + source.get_name())
    try:
        client = Client()
        client.ensure_daemon(progress=lambda text: Gimp.progress_set_text(text))
        Gimp.progress_update(0.1)
        width, height, fmt, pixels, offsets = _read_layer(source)
        Gimp.progress_update(0.2)
        model = config.get_property("model") or None
        mode = config.get_property("reference-mode") if with_reference else "detect"
        reply, result = client.colorize(
            width,
            height,
            fmt,
            pixels,
            model=model,
            reference=reference,
            reference_mode=mode,
            strength=config.get_property("strength"),
            offset=offsets,
            progress=_show_progress,
        )
        Gimp.progress_update(0.9)
    except BackendError as exc:
        Gimp.progress_end()
        return _error(procedure, exc.message)
    try:
        _write_result(image, source, reply["format"], result)
    finally:
        client.release()
    Gimp.progress_update(1.0)
    Gimp.progress_end()
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _show_progress(stage, done):
    """The daemon's stages move GIMP's progress bar from 20 % to 90 %."""
    Gimp.progress_set_text("Colorizing: " + stage)
    Gimp.progress_update(0.2 + 0.7 * done)


def run_auto(procedure, run_mode, image, drawables, config, data):
    return _colorize(procedure, run_mode, image, drawables, config, with_reference=False)


def run_reference(procedure, run_mode, image, drawables, config, data):
    return _colorize(procedure, run_mode, image, drawables, config, with_reference=True)


class Colorize(Gimp.PlugIn):
    def do_query_procedures(self):
        return [AUTO_PROC, REFERENCE_PROC]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        auto = name == AUTO_PROC
        procedure = Gimp.ImageProcedure.new(
            self, name, Gimp.PDBProcType.PLUGIN, run_auto if auto else run_reference, None
        )
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Auto Colorize..." if auto else "Colorize from Reference...")
        procedure.add_menu_path("<Image>/Filters/Colorize")
        procedure.set_documentation(
            "Colorize a black-and-white photo with a neural network"
            if auto
            else "Colorize guided by a reference photo or a layer of painted colour hints",
            "Adds the colorized result as a new layer above the selected layer; the original "
            "is left untouched. Needs the colorize backend (installed by install.py).",
            name,
        )
        procedure.set_attribution(
            "GIMP Colorize contributors", "GIMP Colorize contributors", "2026"
        )
        if not auto:
            procedure.add_layer_argument(
                "reference",
                "Reference layer",
                "Colour photo (exemplar) or transparent hint layer",
                True,
                GObject.ParamFlags.READWRITE,
            )
            procedure.add_choice_argument(
                "reference-mode",
                "Reference is",
                "How to read the reference layer",
                _reference_modes(),
                "detect",
                GObject.ParamFlags.READWRITE,
            )
        procedure.add_string_argument(
            "model",
            "Model",
            "Model name or .onnx path; empty = default",
            "",
            GObject.ParamFlags.READWRITE,
        )
        procedure.add_double_argument(
            "strength",
            "Strength",
            "How much colour to apply (0..1)",
            0.0,
            1.0,
            1.0,
            GObject.ParamFlags.READWRITE,
        )
        return procedure


def _reference_modes():
    choice = Gimp.Choice.new()
    choice.add("detect", 0, "Detect", "Opaque photo = exemplar; mostly transparent = hints")
    choice.add("exemplar", 1, "Exemplar photo", "Borrow the colours of a similar photo")
    choice.add("hints", 2, "Painted hints", "Honour painted colour strokes and dots")
    return choice


Gimp.main(Colorize.__gtype__, sys.argv)
