"""Heterogeneous exemplar-guided colorizer: L, Sobel contours and a reference, each compressed.

Three small encoders compress the target's lightness, its Sobel contours and the
reference (in Lab) to 1/8 resolution. The target attends over the reference's
lightness features to borrow the reference's chroma where the content matches
(a soft correspondence), a pooled embedding of the reference carries its overall
palette, and a decoder fuses everything into ab at 1/4 resolution (regression).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from colorize_backend.core.contract import AB_SCALE, centred_lightness

from training.arch.layers import conv_bn_relu, upsample_like

FEATURES = 96


def _encoder(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        conv_bn_relu(cin, 32, 2),
        conv_bn_relu(32, 64, 2),
        conv_bn_relu(64, cout, 2),
        conv_bn_relu(cout, cout),
    )


class ExemplarColorizer(nn.Module):
    """(L [N,1,H,W], ref_lab [N,3,Hr,Wr]) → ab [N,2,H/4,W/4] (H, W, Hr, Wr multiples of 8)."""

    sobel: torch.Tensor

    def __init__(self):
        super().__init__()
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
        self.register_buffer("sobel", torch.stack([sobel, sobel.T])[:, None])
        self.lightness_encoder = _encoder(1, FEATURES)  # shared by target and reference
        self.contour_encoder = _encoder(2, 32)
        self.reference_encoder = _encoder(3, FEATURES)
        self.palette = nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(inplace=True))
        self.fuse = nn.Sequential(conv_bn_relu(FEATURES + 32 + 3 + 64, 128), conv_bn_relu(128, 128))
        self.decode = nn.Sequential(conv_bn_relu(128 + 1, 64), nn.Conv2d(64, 2, 3, padding=1))

    def forward(self, lightness: torch.Tensor, ref_lab: torch.Tensor) -> torch.Tensor:
        centred = centred_lightness(lightness)
        contours = F.conv2d(centred, self.sobel, padding=1)
        target = self.lightness_encoder(centred)
        ref_centred = torch.cat(
            [centred_lightness(ref_lab[:, :1]), ref_lab[:, 1:] / AB_SCALE], dim=1
        )
        ref_keys = self.lightness_encoder(ref_centred[:, :1])
        ref_ab = F.avg_pool2d(ref_centred[:, 1:], 8)  # the encoders work at 1/8
        warped, confidence = self._correspond(target, ref_keys, ref_ab)
        palette = self.palette(self.reference_encoder(ref_centred).mean(dim=(2, 3)))
        palette = palette[:, :, None, None].expand(-1, -1, *target.shape[2:])
        fused = self.fuse(
            torch.cat([target, self.contour_encoder(contours), warped, confidence, palette], dim=1)
        )
        up = F.interpolate(fused, scale_factor=2, mode="bilinear", align_corners=False)
        return torch.tanh(self.decode(torch.cat([up, upsample_like(centred, up)], 1))) * AB_SCALE

    @staticmethod
    def _correspond(target, ref_keys, ref_ab):
        """Soft attention from each target position to the reference: warped ab + confidence."""
        n, c, h, w = target.shape
        query = F.normalize(target.flatten(2), dim=1)  # [N, C, HW]
        keys = F.normalize(ref_keys.flatten(2), dim=1)  # [N, C, HrWr]
        similarity = torch.bmm(query.transpose(1, 2), keys) * 20.0  # [N, HW, HrWr]
        attention = similarity.softmax(dim=2)
        warped = torch.bmm(attention, ref_ab.flatten(2).transpose(1, 2))  # [N, HW, 2]
        confidence = similarity.max(dim=2).values / 20.0
        return (warped.transpose(1, 2).reshape(n, 2, h, w), confidence.reshape(n, 1, h, w))
