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


def hint_layer(image, source):
    """A transparent layer with painted dots of known colours, offset from the source.

    A grayscale image cannot hold colour, so (as a user would) convert it to RGB first.
    """
    image.convert_rgb()
    w, h = 120, 80
    layer = Gimp.Layer.new(
        image, "hints", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )
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


def run(proc_name, image, source, reference=None):
    proc = Gimp.get_pdb().lookup_procedure(proc_name)
    if proc is None:
        raise RuntimeError("procedure " + proc_name + " is not registered")
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [source])
    if reference is not None:
        cfg.set_property("reference", reference)
        cfg.set_property("reference-mode", "hints")
    result = proc.run(cfg)
    status = result.index(0)
    error = Gimp.get_pdb().get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""
    return status.value_nick, error, proc.get_menu_paths(), proc.get_menu_label()


for case in PARAMS["cases"]:
    image, source = load()
    before = dump(source, case + "-source-before")
    reference = hint_layer(image, source) if case == "reference" else None
    names_before = [layer.get_name() for layer in image.get_layers()]
    proc = "plug-in-colorize-reference" if case == "reference" else "plug-in-colorize-auto"
    status, error, menus, label = run(proc, image, source, reference)
    layers = image.get_layers()
    facts[case] = {
        "status": status,
        "error": error,
        "menu": menus,
        "label": label,
        "layers_before": names_before,
        "layers_after": [layer.get_name() for layer in layers],
        "source_before": before,
        "source_after": dump(source, case + "-source-after"),
        "source_position": image.get_item_position(source),
        "base_type": image.get_base_type().value_nick,
    }
    if status == "success":
        new = [layer for layer in layers if layer.get_name().endswith("(colorized)")][0]
        facts[case]["result"] = dump(new, case + "-result")
        facts[case]["result_position"] = image.get_item_position(new)
    image.delete()

with open(WORK + "/facts.json", "w") as fh:
    json.dump(facts, fh, indent=1)
