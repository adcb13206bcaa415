# -*- coding: utf-8 -*-
"""Drive the GIMP 2.10 entry through the stand-in gimpfu (Python 2.7 or 3).

argv: plug-in folder, grey pixels file, width, height, output folder
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the stand-in gimpfu
import gimpfu  # noqa: E402

plugin_dir, pixels_file, width, height, out = sys.argv[1:6]
width, height = int(width), int(height)
entry = os.path.join(plugin_dir, "colorize_gimp2.py")
with open(entry) as fh:  # keep the module's globals alive, as GIMP does
    exec(compile(fh.read(), entry, "exec"), {"__name__": "__main__", "__file__": entry})


def new_image(precision=150):
    image = gimpfu.Image(gimpfu.GRAY, precision)
    layer = gimpfu.Layer(image, "Photo", width, height, gimpfu.GRAY_IMAGE, 100, 0)
    with open(pixels_file, "rb") as fh:
        layer.pixels = bytearray(fh.read())
    layer.set_offsets(7, 5)
    image.insert_layer(layer)
    return image, layer


facts = {"registered": {}, "runs": {}}
for name, info in gimpfu.REGISTERED.items():
    facts["registered"][name] = {
        "label": info["label"],
        "menu": info["menu"],
        "params": [p[1] for p in info["params"]],
    }

for case in ("auto", "failure", "sixteen-bit"):
    del gimpfu.EVENTS[:]
    image, layer = new_image(250 if case == "sixteen-bit" else 150)
    original = bytes(layer.pixels)
    function = gimpfu.REGISTERED["python-fu-colorize-auto"]["function"]
    error = None
    try:
        function(image, layer, "", 1.0)
    except RuntimeError as exc:
        error = str(exc)
    result = [lay for lay in image.layers if lay is not layer]
    facts["runs"][case] = {
        "error": error,
        "events": list(gimpfu.EVENTS),
        "layers": [lay.name for lay in image.layers],
        "source_unchanged": bytes(layer.pixels) == original,
        "base_type": image.base_type,
        "result": None
        if not result
        else {
            "bpp": result[0].bpp,
            "offsets": list(result[0].offsets),
            "size": [result[0].width, result[0].height],
        },
    }
    if result:
        with open(os.path.join(out, case + ".rgb"), "wb") as fh:
            fh.write(bytes(result[0].pixels))
    if case == "auto":
        os.environ["COLORIZE_CONFIG"] = os.path.join(out, "down.json")

with open(os.path.join(out, "facts.json"), "w") as fh:
    json.dump(facts, fh)
