# Executed inside real GIMP 3 by python-fu-eval (globals Gimp, Gio, GLib, GObject are there).
# Runs the colorize procedures on a photo and dumps pixels + facts for the host-side test.
# Its parameters come from params.json beside this file (work folder, cases, hint dots).
import json

import gi

gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

FMT = "R'G'B'A u8"
WORK = "/tmp/colorize-e2e"
with open(WORK + "/params.json") as fh:
    PARAMS = json.load(fh)
facts = {}
OTHERS = []  # images a case opened besides the photo


def dump(layer, name):
    w, h = layer.get_width(), layer.get_height()
    data = bytes(
        layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, FMT, Gegl.AbyssPolicy.CLAMP)
    )
    with open(WORK + "/" + name + ".rgba", "wb") as fh:
        fh.write(data)
    _, x, y = layer.get_offsets()
    return {"name": layer.get_name(), "width": w, "height": h, "offsets": [x, y]}


def load():
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(WORK + "/photo.jpg"))
    source = image.get_layers()[0]
    image.resize(source.get_width() + 40, source.get_height() + 30, 0, 0)
    source.set_offsets(*PARAMS["source_offset"])  # a source layer that is not at the origin
    return image, source


def hint_layer(image, source, rgb=True):
    """A transparent layer with painted dots of known colours, offset from the source.

    A grayscale image cannot hold colour, so (as a user should) convert it to RGB first;
    with rgb=False the user forgot, and the dots come out grey.
    """
    if rgb:
        image.convert_rgb()
    w, h = 120, 80
    kind = Gimp.ImageType.RGBA_IMAGE if rgb else Gimp.ImageType.GRAYA_IMAGE
    layer = Gimp.Layer.new(image, "hints", w, h, kind, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    layer.set_offsets(*PARAMS["hint_layer_offset"])
    pixels = bytearray(w * h * 4)
    for (cx, cy), rgb in zip(PARAMS["hint_dots"], PARAMS["hint_colours"]):
        for y in range(cy - 2, cy + 3):
            for x in range(cx - 2, cx + 3):
                pixels[(y * w + x) * 4 : (y * w + x) * 4 + 4] = bytes(rgb) + b"\xff"
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), FMT, bytes(pixels))
    buf.flush()
    return layer


def run(proc_name, image, source, reference=None, **settings):
    proc = Gimp.get_pdb().lookup_procedure(proc_name)
    if proc is None:
        raise RuntimeError("procedure " + proc_name + " is not registered")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [source])
    if reference is not None:
        cfg.set_property("reference", reference)
        cfg.set_property("reference-mode", settings.pop("reference-mode", "hints"))
    for name, value in settings.items():
        cfg.set_property(name, value)
    result = proc.run(cfg)
    status = result.index(0)
    error = Gimp.get_pdb().get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""
    return status.value_nick, error, proc.get_menu_paths(), proc.get_menu_label()


def argument(name):
    proc = Gimp.get_pdb().lookup_procedure("plug-in-colorize-auto")
    return [a for a in proc.get_arguments() if a.get_name() == name][0]


def model_choices():
    """The nicks of the Auto Colorize dialog's Model list."""
    return list(Gimp.param_spec_choice_get_choice(argument("model")).list_nicks())


def sixteen_bit(image, source):
    """The photo at 16 bits, its grey values set off the 8-bit grid (not multiples of 257)."""
    image.convert_precision(Gimp.Precision.U16_NON_LINEAR)
    w, h = source.get_width(), source.get_height()
    rect = Gegl.Rectangle.new(0, 0, w, h)
    grey = bytearray(source.get_buffer().get(rect, 1.0, "Y' u16", Gegl.AbyssPolicy.CLAMP))
    for i in range(0, len(grey), 2):
        value = min(65535, grey[i] | grey[i + 1] << 8) // 257 * 257 + (i // 2) % 251
        grey[i], grey[i + 1] = value & 255, min(value, 65535) >> 8
    buf = source.get_buffer()
    buf.set(rect, "Y' u16", bytes(grey))
    buf.flush()


def dump16(layer, name, fmt):
    w, h = layer.get_width(), layer.get_height()
    rect = Gegl.Rectangle.new(0, 0, w, h)
    with open(WORK + "/" + name + ".u16", "wb") as fh:
        fh.write(bytes(layer.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP)))


def mask_bytes(drawable, name):
    w, h = drawable.get_width(), drawable.get_height()
    rect = Gegl.Rectangle.new(0, 0, w, h)
    with open(WORK + "/" + name + ".mask", "wb") as fh:
        fh.write(bytes(drawable.get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.CLAMP)))


def prepare(case, image, source):
    """What each case does to the image before running, and the procedure and settings."""
    if case == "reference":
        return "plug-in-colorize-reference", hint_layer(image, source), {}
    if case == "grey_hints":
        return "plug-in-colorize-reference", hint_layer(image, source, rgb=False), {}
    if case == "exemplar_other":  # a colour photo opened as its own image
        other = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE,
                               Gio.File.new_for_path(WORK + "/colour.png"))  # fmt: skip
        OTHERS.append(other)
        return "plug-in-colorize-reference", other.get_layers()[0], {"reference-mode": "exemplar"}
    if case == "exemplar_in_grey":  # an "exemplar" pasted into the greyscale photo
        pasted = source.copy()
        image.insert_layer(pasted, None, 0)
        pasted.set_name("pasted exemplar")
        return "plug-in-colorize-reference", pasted, {"reference-mode": "exemplar"}
    if case == "sixteen":
        sixteen_bit(image, source)
    elif case == "selection":
        Gimp.context_set_feather(True)
        Gimp.context_set_feather_radius(12.0, 12.0)
        image.select_ellipse(Gimp.ChannelOps.REPLACE, 40, 30, 120, 90)
        Gimp.context_set_feather(False)
    elif case == "profile":
        image.convert_rgb()  # an RGB profile needs an RGB image
        profile = Gimp.ColorProfile.new_from_file(Gio.File.new_for_path(WORK + "/adobe.icc"))
        if not image.set_color_profile(profile):  # the same numbers now mean other colours
            raise RuntimeError("could not assign the Adobe RGB profile")
    elif case == "variants":
        return "plug-in-colorize-auto", None, {"variants": 3}
    elif case == "detail":
        return "plug-in-colorize-auto", None, {"detail-size": 96, "saturation": 1.5}
    elif case == "animation":  # frames of a camera panning: layers above the photo, in order
        w, h = source.get_width() - 40, source.get_height()
        grey = bytes(source.get_buffer().get(Gegl.Rectangle.new(0, 0, w + 40, h), 1.0, "Y' u8",
                                             Gegl.AbyssPolicy.CLAMP))  # fmt: skip
        for i in range(6):
            layer = Gimp.Layer.new(image, f"frame {i}", w, h, Gimp.ImageType.GRAY_IMAGE, 100.0,
                                   Gimp.LayerMode.NORMAL)  # fmt: skip
            image.insert_layer(layer, None, 0)
            rows = b"".join(grey[y * (w + 40) + 4 * i : y * (w + 40) + 4 * i + w] for y in range(h))
            buf = layer.get_buffer()
            buf.set(Gegl.Rectangle.new(0, 0, w, h), "Y' u8", rows)
            buf.flush()
        return "plug-in-colorize-all", None, {"animation": True}
    elif case == "all":
        copy = source.copy()
        image.insert_layer(copy, None, 0)
        copy.set_name("Second")
        return "plug-in-colorize-all", None, {}
    return "plug-in-colorize-auto", None, {}


def record(case, image, source, proc_run):
    status, error, menus, label = proc_run
    layers = image.get_layers()
    fact = {
        "status": status,
        "error": error,
        "menu": menus,
        "label": label,
        "layers_after": [layer.get_name() for layer in layers],
        "source_after": dump(source, case + "-source-after"),
        "source_position": image.get_item_position(source),
        "base_type": image.get_base_type().value_nick,
        "precision": image.get_precision().value_nick,
        "profile": bytes(image.get_color_profile().get_icc_profile()).hex()
        if image.get_color_profile()
        else None,
    }
    results = [layer for layer in layers if " (colorized" in layer.get_name()]
    if results:
        new = results[0]
        fact["result"] = dump(new, case + "-result")
        fact["result_position"] = image.get_item_position(new)
        fact["result_has_mask"] = new.get_mask() is not None
        if case == "sixteen":
            dump16(source, case + "-source", "Y' u16")
            dump16(new, case + "-result", "R'G'B' u16")
        if case == "selection" and new.get_mask() is not None:
            mask_bytes(new.get_mask(), case + "-result")
            mask_bytes(image.get_selection(), case + "-selection")
    return fact


facts["model_choices"] = model_choices()
facts["detail_size_default"] = argument("detail-size").get_default_value()
for case in PARAMS["cases"]:
    image, source = load()
    proc, reference, settings = prepare(case, image, source)
    before = dump(source, case + "-source-before")
    names_before = [layer.get_name() for layer in image.get_layers()]
    base_before = image.get_base_type().value_nick
    facts[case] = record(case, image, source, run(proc, image, source, reference, **settings))
    facts[case].update(source_before=before, layers_before=names_before, base_before=base_before)
    image.delete()
    while OTHERS:
        facts[case]["other_image_layers"] = len(OTHERS[-1].get_layers())
        OTHERS.pop().delete()

with open(WORK + "/facts.json", "w") as fh:
    json.dump(facts, fh, indent=1)
