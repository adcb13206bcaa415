# -*- coding: utf-8 -*-
"""A stand-in for GIMP 2.10's gimpfu module (Python 2.7-compatible), recording what a plug-in does.

Only the calls the colorize plug-in makes exist; pixel regions hold real bytes so that
the plug-in's reading and writing can be checked.
"""

from __future__ import absolute_import, division, print_function

PF_IMAGE, PF_DRAWABLE, PF_LAYER, PF_STRING, PF_SLIDER, PF_OPTION = range(6)
RGB, GRAY = 0, 1
RGB_IMAGE, RGBA_IMAGE, GRAY_IMAGE, GRAYA_IMAGE = 0, 1, 2, 3
NORMAL_MODE = 0
BPP = {RGB_IMAGE: 3, RGBA_IMAGE: 4, GRAY_IMAGE: 1, GRAYA_IMAGE: 2}

REGISTERED = {}
EVENTS = []


def register(
    name,
    blurb,
    help_text,
    author,
    copyright_text,
    date,
    label,
    image_types,
    params,
    results,
    function,
    menu=None,
):
    REGISTERED[name] = {
        "label": label,
        "menu": menu,
        "params": params,
        "function": function,
        "image_types": image_types,
    }


def main():
    EVENTS.append("main")


class PixelRegion(object):
    def __init__(self, layer, dirty):
        self.layer = layer
        self.dirty = dirty

    def __getitem__(self, key):
        cols, rows = key
        assert (cols.start, cols.stop, rows.start, rows.stop) == (
            0,
            self.layer.width,
            0,
            self.layer.height,
        ), "plug-in must read whole layer"
        return bytes(self.layer.pixels)

    def __setitem__(self, key, value):
        assert self.dirty, "writing to a read-only pixel region"
        assert len(value) == len(self.layer.pixels), "wrong byte count written"
        self.layer.shadow = bytearray(value)


class Layer(object):
    def __init__(self, image, name, width, height, layer_type, opacity, mode):
        self.image, self.name, self.width, self.height = image, name, width, height
        self.bpp = BPP[layer_type]
        self.pixels = bytearray(width * height * self.bpp)
        self.shadow = None
        self.offsets = (0, 0)
        self.parent = None

    def get_pixel_rgn(self, x, y, w, h, dirty, shadow):
        return PixelRegion(self, dirty)

    def set_offsets(self, x, y):
        self.offsets = (x, y)

    def flush(self):
        EVENTS.append("flush")

    def merge_shadow(self, undo):
        self.pixels = self.shadow

    def update(self, x, y, w, h):
        EVENTS.append("update")


class Image(object):
    def __init__(self, base_type, precision=150):
        self.base_type = base_type
        self.precision = precision  # 150: 8-bit perceptual gamma
        self.layers = []

    def insert_layer(self, layer, parent=None, position=0):
        self.layers.insert(position, layer)


class _Gimp(object):
    Layer = Layer

    def progress_init(self, text=""):
        EVENTS.append("progress_init")

    def progress_update(self, fraction):
        EVENTS.append("progress %.1f" % fraction)

    def displays_flush(self):
        EVENTS.append("displays_flush")


class _Pdb(object):
    def gimp_message(self, text):
        EVENTS.append("message: " + text)

    def gimp_image_undo_group_start(self, image):
        EVENTS.append("undo_start")

    def gimp_image_undo_group_end(self, image):
        EVENTS.append("undo_end")

    def gimp_image_convert_rgb(self, image):
        image.base_type = RGB
        EVENTS.append("convert_rgb")

    def gimp_item_get_parent(self, item):
        return item.parent

    def gimp_image_get_item_position(self, image, item):
        return image.layers.index(item)

    def gimp_image_get_precision(self, image):
        return image.precision


gimp = _Gimp()
pdb = _Pdb()
