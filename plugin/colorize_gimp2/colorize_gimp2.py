#!/usr/bin/env python2
# -*- coding: utf-8 -*-
"""GIMP 2.10 entry (gimpfu, Python 2.7): the same two menu items as the GIMP 3 plug-in.

Pixel regions give the layer's native bytes (gray, graya, rgb or rgba), which
are exactly the protocol's formats; the shared client does the rest.
"""

from __future__ import absolute_import, division, print_function

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for candidate in (HERE, os.path.join(HERE, os.pardir, "colorize")):
    if os.path.exists(os.path.join(candidate, "colorize_client.py")):
        sys.path.insert(0, candidate)
        break

from gimpfu import (  # noqa: E402
    PF_DRAWABLE,
    PF_IMAGE,
    PF_LAYER,
    PF_OPTION,
    PF_SLIDER,
    PF_STRING,
    RGB,
    RGB_IMAGE,
    RGBA_IMAGE,
    NORMAL_MODE,
    gimp,
    main,
    pdb,
    register,
)

from colorize_client import REFERENCE_MODES, BackendError, Client  # noqa: E402

FORMATS = {1: "gray", 2: "graya", 3: "rgb", 4: "rgba"}


def read_layer(layer):
    """(width, height, format, bytes, offsets) straight from a pixel region."""
    width, height = layer.width, layer.height
    region = layer.get_pixel_rgn(0, 0, width, height, False, False)
    return width, height, FORMATS[layer.bpp], region[0:width, 0:height], layer.offsets


def write_result(image, source, fmt, pixels):
    """New layer above the source with the result; one undo group."""
    width, height = source.width, source.height
    pdb.gimp_image_undo_group_start(image)
    try:
        if image.base_type != RGB:
            pdb.gimp_image_convert_rgb(image)
        layer = gimp.Layer(
            image,
            source.name + " (colorized)",
            width,
            height,
            RGBA_IMAGE if fmt == "rgba" else RGB_IMAGE,
            100,
            NORMAL_MODE,
        )
        parent = pdb.gimp_item_get_parent(source)
        position = pdb.gimp_image_get_item_position(image, source)
        image.insert_layer(layer, parent, position)
        layer.set_offsets(*source.offsets)
        region = layer.get_pixel_rgn(0, 0, width, height, True, True)
        region[0:width, 0:height] = pixels
        layer.flush()
        layer.merge_shadow(True)
        layer.update(0, 0, width, height)
    finally:
        pdb.gimp_image_undo_group_end(image)
    return layer


def as_bytes(pixels):
    """The result's bytes: under Python 2, bytes() of a memoryview is its repr, not its content."""
    return pixels.tobytes() if isinstance(pixels, memoryview) else bytes(pixels)


PRECISION_U8_GAMMA = 150  # GIMP 2.10's 8-bit perceptual precision


def colorize(image, drawable, settings, reference=None):
    """settings: the dialog's values as the wire names them (colorize_client.OPTION_NAMES)."""
    if reference is not None and reference == drawable:
        pdb.gimp_message("The reference layer must be a different layer.")
        return
    if pdb.gimp_image_get_precision(image) != PRECISION_U8_GAMMA:
        pdb.gimp_message(
            "This GIMP 2.10 plug-in colorizes 8-bit images: choose Image > Precision > 8 bit "
            "integer (perceptual gamma), or colorize 16-bit and float images in GIMP 3."
        )
        return
    gimp.progress_init("Colorizing " + drawable.name)
    try:
        client = Client()
        client.ensure_daemon(progress=gimp.progress_init)
        width, height, fmt, pixels, offsets = read_layer(drawable)
        gimp.progress_update(0.2)
        ref = read_layer(reference) + ("u8",) if reference is not None else None
        reply, result = client.colorize(
            width,
            height,
            fmt,
            pixels,
            settings,
            reference=ref,
            offset=offsets,
            progress=lambda stage, done: gimp.progress_update(0.2 + 0.7 * done),
        )
    except BackendError as exc:
        pdb.gimp_message(exc.message)
        raise RuntimeError(exc.message)  # gimpfu reports it and the image stays untouched
    gimp.progress_update(0.9)
    try:
        write_result(image, drawable, reply["format"], as_bytes(result))
    finally:
        client.release()
    gimp.progress_update(1.0)
    gimp.displays_flush()


def auto_colorize(image, drawable, model, saturation):
    colorize(image, drawable, {"model": model or None, "saturation": saturation})


def reference_colorize(image, drawable, reference, mode_index, model, saturation, strength):
    if reference is None:
        pdb.gimp_message("Choose a reference layer: a colour photo or a layer of painted hints.")
        return
    settings = {
        "model": model or None,
        "saturation": saturation,
        "strength": strength,
        "reference_mode": REFERENCE_MODES[mode_index],
    }
    colorize(image, drawable, settings, reference)


COMMON = [
    (PF_STRING, "model", "Model (empty = default)", ""),
    (PF_SLIDER, "saturation", "Saturation (colour amount)", 1.0, (0.0, 2.0, 0.05)),
]

register(
    "python-fu-colorize-auto",
    "Colorize a black-and-white photo with a neural network",
    "Adds the colorized result as a new layer above the selected layer.",
    "GIMP Colorize contributors",
    "GIMP Colorize contributors",
    "2026",
    "Auto Colorize...",
    "RGB*, GRAY*",
    [(PF_IMAGE, "image", "Image", None), (PF_DRAWABLE, "drawable", "Layer", None)] + COMMON,
    [],
    auto_colorize,
    menu="<Image>/Filters/Colorize",
)

register(
    "python-fu-colorize-reference",
    "Colorize guided by a reference photo or a layer of painted colour hints",
    "Adds the colorized result as a new layer above the selected layer.",
    "GIMP Colorize contributors",
    "GIMP Colorize contributors",
    "2026",
    "Colorize from Reference...",
    "RGB*, GRAY*",
    [
        (PF_IMAGE, "image", "Image", None),
        (PF_DRAWABLE, "drawable", "Layer", None),
        (PF_LAYER, "reference", "Reference layer", None),
        (PF_OPTION, "mode", "Reference is", 0, ["Detect", "Exemplar photo", "Painted hints"]),
    ]
    + COMMON
    + [(PF_SLIDER, "strength", "Strength (how far the reference steers)", 1.0, (0.0, 1.0, 0.05))],
    [],
    reference_colorize,
    menu="<Image>/Filters/Colorize",
)

main()
