"""SimCLR augmentations computed on whole batches on the training device.

Each sample gets its own random parameters, drawn from an explicit
``torch.Generator``; the pixel work is a handful of batched tensor ops (one
``grid_sample`` for crop and flip, per-sample colour matrices, one grouped
convolution for blur), so no per-sample PIL work and no DataLoader workers.

Transforms (SimCLR defaults, Chen et al. 2020, as in the protocol):
- ``crop``: RandomResizedCrop, scale (0.08, 1), ratio (3/4, 4/3), bilinear
- ``flip``: horizontal flip, p = 0.5
- ``rotate``: rotation by an angle uniform in [-180, 180) degrees (not in SimCLR's set;
  it makes the orientation of the shape and of its texture useless for telling samples apart)
- ``jitter``: ColorJitter(0.4, 0.4, 0.4, 0.1), p = 0.8, applied in the fixed order
  brightness, contrast, saturation, hue (torchvision shuffles the order); hue is
  a rotation of the chroma plane in YIQ space, a linear stand-in for HSV hue
- ``grayscale``: p = 0.2
- ``blur``: Gaussian blur, sigma in (0.1, 2) x side / 224 px, kernel 10% of the side (odd), p = 0.5

``torchvision`` is the authors' pipeline instead (the fidelity study's augmentation variant):
torchvision's own RandomResizedCrop, ColorJitter (its random order, HSV hue) p 0.8,
RandomGrayscale 0.2, GaussianBlur p 0.5 and a horizontal flip, applied image by image with
their parameters drawn on the host from torch's generator, seeded once a call from the
step's generator. Slow, and never recorded in a CUDA graph (``host_random``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from comm_diag.errors import InputError
from comm_diag.comm.runtime import full_precision, global_seed_within

TRANSFORMS = ("crop", "flip", "rotate", "jitter", "grayscale", "blur")
SIMCLR = ("crop", "flip", "jitter", "grayscale", "blur")
POLICIES = {
    "all": SIMCLR,
    "none": (),
    "color": ("jitter", "grayscale"),
    **{t: (t,) for t in TRANSFORMS},
    "torchvision": ("torchvision",),  # the authors' SimCLR set, torchvision's transforms image by image
}
BLUR_REFERENCE_PX = 224
_LUMA = torch.tensor([0.299, 0.587, 0.114])
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)
_ON_DEVICE: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = {}


def colour_constants(device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """(luma (1,3,1,1), RGB->YIQ (3,3), YIQ->RGB (3,3)) on ``device``, copied there once: a
    host-to-device copy inside a step makes the host wait for the GPU (0.4.0 did it 3 times
    per augmentation call)."""
    if device not in _ON_DEVICE:
        _ON_DEVICE[device] = (_LUMA.to(device).view(1, 3, 1, 1), _RGB2YIQ.to(device), _YIQ2RGB.to(device))
    return _ON_DEVICE[device]


def parse_policy(policy: str) -> tuple[str, ...]:
    """'all', 'none', 'color', a transform name, or a '+'-joined list (e.g. 'crop+flip')."""
    names: list[str] = []
    for part in policy.split("+"):
        if part not in POLICIES:
            raise InputError(f"unknown augmentation {part!r}; choose from {', '.join(POLICIES)} "
                             "(or join several with '+')")
        names += [t for t in POLICIES[part] if t not in names]
    if "torchvision" in names:
        if len(names) > 1:
            raise InputError("augmentation 'torchvision' is a whole pipeline (the authors' SimCLR set): it joins "
                             "no other")
        return ("torchvision",)
    return tuple(t for t in TRANSFORMS if t in names)  # applied in TRANSFORMS' order, whatever the given one


def affine_grid(theta: Tensor, h: int, w: int) -> Tensor:
    """``F.affine_grid(theta, (B, C, h, w), align_corners=False)`` by broadcasting.

    theta: Bx2x3; returns BxHxWx2 with grid[b, i, j] = theta[b] @ (u_j, v_i, 1), where
    u, v are the pixel centres in [-1, 1]. The same numbers as torch's within float
    rounding (tested): torch computes it as a batched (HW x 3) @ (3 x 2) matmul, which on
    a CPU took as long as the crop's ``grid_sample`` itself (5% of a CoMM step).
    """
    u = torch.linspace(-1.0, 1.0, w, device=theta.device, dtype=theta.dtype) * ((w - 1) / w)  # (W,)
    v = torch.linspace(-1.0, 1.0, h, device=theta.device, dtype=theta.dtype) * ((h - 1) / h)  # (H,)
    t = theta[:, :, :, None, None]  # Bx2x3x1x1
    xy = t[:, :, 0] * u + t[:, :, 1] * v[:, None] + t[:, :, 2]  # Bx2xHxW
    return xy.permute(0, 2, 3, 1)  # BxHxWx2 (a view: grid_sample reads it as fast as a copy)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


@dataclass(frozen=True)
class Augment:
    """A per-modality augmentation: ``Augment("all")(x, gen)`` with x Bx3xHxW in [0, 1]."""

    policy: str = "all"
    crop_scale: tuple[float, float] = (0.08, 1.0)
    jitter_strength: float = 0.4
    hue: float = 0.1
    p_jitter: float = 0.8
    p_gray: float = 0.2
    p_blur: float = 0.5

    @property
    def transforms(self) -> tuple[str, ...]:
        return parse_policy(self.policy)

    @property
    def host_random(self) -> bool:
        """Whether its random parameters are drawn on the host (torchvision's pipeline): a
        CUDA graph would replay one draw forever."""
        return "torchvision" in self.transforms

    def __call__(self, x: Tensor, gen: torch.Generator, apply=None) -> Tensor:
        """x Bx3xHxW in [0, 1] -> its augmented views. The random parameters are drawn first
        (``draw``: every draw from ``gen``, in one fixed order), then applied by a pure
        function of the pixels and those parameters: ``apply`` (default ``self.apply``; the
        fast path passes it compiled, ``Runtime.fuse``)."""
        # pixels stay fp32 under a bf16 training autocast (the blur convolution and the
        # crop's grid would otherwise be computed in bf16)
        with full_precision(x.device):
            if self.host_random:
                return self._torchvision(x.float(), gen)
            return (apply or self.apply)(x.float(), self.draw(x.shape[0], x.device, gen))

    def draw(self, b: int, device, gen: torch.Generator) -> dict[str, Tensor]:
        """Every random parameter of a batch of ``b`` (each (b,)), in the order the transforms
        use them: crop (area, log ratio, centre x, y), flip, rotation, jitter (on, brightness,
        contrast, saturation, hue), grayscale, blur (sigma, on)."""
        ts, p = self.transforms, {}

        def rand() -> Tensor:
            return torch.rand(b, generator=gen, device=device)
        if "crop" in ts:
            p["area"] = _uniform(b, *self.crop_scale, gen, device)
            p["log_ratio"] = _uniform(b, math.log(3 / 4), math.log(4 / 3), gen, device)
            p["centre_x"], p["centre_y"] = rand(), rand()
        if "flip" in ts:
            p["flip"] = rand()
        if "rotate" in ts:
            p["angle"] = rand()
        if "jitter" in ts:
            s = self.jitter_strength
            p["jitter_on"] = rand()
            p["brightness"], p["contrast"], p["saturation"] = (_uniform(b, 1 - s, 1 + s, gen, device) for _ in range(3))
            p["hue"] = _uniform(b, -self.hue, self.hue, gen, device)
        if "grayscale" in ts:
            p["gray_on"] = rand()
        if "blur" in ts:
            p["sigma"] = _uniform(b, 0.1, 2.0, gen, device)
            p["blur_on"] = rand()
        return p

    def apply(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        """The transforms with drawn parameters ``p`` (``draw``): no generator, no host read, one
        fixed graph per policy and shape (what ``torch.compile`` fuses)."""
        ts = self.transforms
        if "crop" in ts or "flip" in ts or "rotate" in ts:
            x = self._crop_flip(x, p)
        if "jitter" in ts or "grayscale" in ts:
            x = self._color(x, p)
        if "blur" in ts:
            x = self._blur(x, p)
        return x

    def _torchvision(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """The authors' pipeline, torchvision's transforms image by image (x Bx3xHxW in [0, 1])."""
        from torchvision.transforms import v2

        h, s = x.shape[-1], self.jitter_strength
        k = max(3, int(0.1 * h) // 2 * 2 + 1)
        pipeline = v2.Compose([
            v2.RandomResizedCrop(h, scale=self.crop_scale, antialias=True),
            v2.RandomApply([v2.ColorJitter(s, s, s, self.hue)], p=self.p_jitter),
            v2.RandomGrayscale(self.p_gray),
            v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1 * h / BLUR_REFERENCE_PX, 2.0 * h / BLUR_REFERENCE_PX))],
                           p=self.p_blur),
            v2.RandomHorizontalFlip(),
        ])
        # torchvision draws from torch's global generator: seeded from the step's, then restored
        seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))  # a host read, once a call
        with global_seed_within(seed):
            return torch.stack([pipeline(img) for img in x])

    def _crop_flip(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        b, dev = x.shape[0], x.device
        sx = sy = torch.ones(b, device=dev)
        cx = cy = torch.zeros(b, device=dev)
        if "area" in p:
            area, ratio = p["area"], p["log_ratio"].exp()
            sx = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width / image width
            sy = torch.sqrt(area / ratio).clamp(max=1.0)
            cx = (1 - sx) * (2 * p["centre_x"] - 1)  # centre, in [-1, 1] coords
            cy = (1 - sy) * (2 * p["centre_y"] - 1)
        if "flip" in p:
            sx = sx * torch.where(p["flip"] < 0.5, -1.0, 1.0)
        zero = torch.zeros_like(sx)
        theta = torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, sy, cy], 1)], 1)  # Bx2x3
        if "angle" in p:  # rotate the sampling grid about the crop's centre: theta = [S R | c]
            a = (2 * p["angle"] - 1) * math.pi
            cos, sin = a.cos(), a.sin()
            rot = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # Bx2x2
            theta = torch.cat([theta[:, :, :2] @ rot, theta[:, :, 2:]], 2)  # Bx2x3
        grid = affine_grid(theta, x.shape[-2], x.shape[-1])  # BxHxWx2
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _color(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        b, dev = x.shape[0], x.device
        if "jitter_on" in p:
            on = (p["jitter_on"] < self.p_jitter).float().view(b, 1, 1, 1)
            bright, contrast, sat = (p[k].view(b, 1, 1, 1) for k in ("brightness", "contrast", "saturation"))
            hue = p["hue"] * 2 * math.pi
            luma, rgb2yiq, yiq2rgb = colour_constants(dev)
            y = (x * bright).clamp(0, 1)
            mean = (y * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)  # Bx1x1x1
            y = ((y - mean) * contrast + mean).clamp(0, 1)
            g = (y * luma).sum(1, keepdim=True)
            y = ((y - g) * sat + g).clamp(0, 1)
            cos, sin = hue.cos(), hue.sin()
            one, zero = torch.ones_like(cos), torch.zeros_like(cos)
            rot = torch.stack([torch.stack([one, zero, zero], 1), torch.stack([zero, cos, -sin], 1),
                               torch.stack([zero, sin, cos], 1)], 1)  # Bx3x3 in YIQ
            m = yiq2rgb @ rot @ rgb2yiq  # Bx3x3 in RGB
            y = torch.einsum("bij,bjhw->bihw", m, y).clamp(0, 1)
            x = on * y + (1 - on) * x
        if "gray_on" in p:
            on = (p["gray_on"] < self.p_gray).float().view(b, 1, 1, 1)
            g = (x * colour_constants(dev)[0]).sum(1, keepdim=True).expand_as(x)
            x = on * g + (1 - on) * x
        return x

    def _blur(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        b, c, h, w = x.shape
        dev = x.device
        k = max(3, int(0.1 * h) // 2 * 2 + 1)  # odd kernel, 10% of the side
        # SimCLR's sigma range (0.1, 2) px is that of 224 px images: scaled with the image, so
        # a 64 px image is blurred as much relative to its size (not 3.5x harder)
        sigma = p["sigma"] * (h / BLUR_REFERENCE_PX)
        sigma = torch.where(p["blur_on"] < self.p_blur, sigma, torch.full_like(sigma, 1e-3))  # 1e-3: identity
        r = torch.arange(k, device=dev, dtype=x.dtype) - k // 2
        kern = torch.exp(-(r.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))  # Bxk
        kern = (kern / kern.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C)xk
        y = x.reshape(1, b * c, h, w)  # one grouped conv per axis for the whole batch
        y = F.conv2d(F.pad(y, (k // 2, k // 2, 0, 0), mode="reflect"), kern.view(b * c, 1, 1, k), groups=b * c)
        y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), kern.view(b * c, 1, k, 1), groups=b * c)
        return y.view(b, c, h, w)
