"""The demo clip bundled in samples/demo_obstacle/: an obstacle that this script draws itself, lying in the
lane of samples/solidWhiteRight.mp4 (Udacity, MIT licence), coming closer from frame 40 to the end.

  python3 tools/devclips/make_demo_clip.py                       # the default object -> samples/demo_obstacle
  python3 tools/devclips/make_demo_clip.py --object boulder      # another object -> samples/demo_obstacle
  python3 tools/devclips/make_demo_clip.py --candidates /work/devclips/demo_candidates   # every object,
                                                                  # each in DIR/<object>/, to compare them
  options: [--out DIR] [--size 960x540|640x360] [--crf 22] [--seed 0] [--nice 10]

Nothing of the object comes from a photograph or a dataset: it is computed here from a fixed seed with
numpy, so the clip carries only the background's MIT licence. The objects (OBJECTS):
  boulder  a brown-grey rock, faceted (flat Voronoi facets on a dome) with speckle, veins and shading;
  crate    a wooden crate: planks with grain, a frame and a diagonal brace, nails, a sunlit lid;
  wheel    a lost truck wheel standing upright: treaded tyre with a rounded sidewall, a steel rim.
Each is drawn at twice its size and averaged down, so its outline is smooth, and lit from the upper left.

The clip is the first 8 s (200 frames, 25 fps) of the sample; the object appears at frame 40 in the middle
of the ego lane, five times as far as it will end, and the car closes in at constant speed until the last
frame, when the object's base is at 0.85 of the height and it is 0.14-0.18 of the frame wide. Placement, contact shadow and compositing
are those of make_dev_clips.py (flat-road perspective calibrated on this road). Written:
  video.mp4        H.264 yuv420p, no audio, crf 22, preset veryfast, single-threaded (byte-identical reruns
                   with the same ffmpeg build);
  masks/NNNNN.png  one per frame, uint8, 0 = in-distribution, 2 = anomaly (the object's pixels);
  meta.json        what was made and how;
and, in --candidates folders only, object.png (the rendered object with its alpha) to look at.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image

sys.dont_write_bytecode = True     # no __pycache__ beside the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_dev_clips as dev  # noqa: E402  (placement, compositing and decoding are shared)

REPO = dev.REPO
BACKGROUND = os.path.join(REPO, "samples", "solidWhiteRight.mp4")
DEFAULT_OUT = os.path.join(REPO, "samples", "demo_obstacle")
DEFAULT_OBJECT = "crate"    # the most unlike the road in colour and shape; see the report on the candidates
CLIP_FRAMES = 200          # 8 s at 25 fps
START_FRAME = 40
NEAR_Y = 0.85              # the object's base at the end of the clip, as a fraction of the height
DEPTH_RATIO = 5.0          # first distance / last distance
LIGHT = np.array([-0.45, 0.70, 0.55])   # toward the light: left, up, toward the camera
LIGHT = LIGHT / np.linalg.norm(LIGHT)


# ---------------------------------------------------------------------------------------------- noise

def value_noise(rng, h, w, cells_y, cells_x):
    """Smooth random field in [0, 1] of size h x w: a (cells_y+1) x (cells_x+1) grid of uniform values
    interpolated bicubically (more cells along an axis = finer detail along it)."""
    grid = rng.random((cells_y + 1, cells_x + 1)).astype(np.float32)
    field = np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.BICUBIC), np.float32)
    return np.clip(field, 0.0, 1.0)


def fractal_noise(rng, h, w, cells, octaves=4, stretch=1.0):
    """Sum of value noise octaves (each twice as fine, half as strong), rescaled to [0, 1].
    stretch > 1 makes features longer along x than along y (wood grain)."""
    total = np.zeros((h, w), np.float32)
    weight, norm = 1.0, 0.0
    for k in range(octaves):
        cy = max(1, int(round(cells * 2 ** k)))
        cx = max(1, int(round(cells * 2 ** k / stretch)))
        total += weight * value_noise(rng, h, w, cy, cx)
        norm += weight
        weight *= 0.5
    total /= norm
    return (total - total.min()) / max(1e-6, total.max() - total.min())


def lambert(nx, ny, nz, ambient):
    """Diffuse lighting of unit normals (x right, y up, z toward the camera) by LIGHT."""
    return ambient + (1.0 - ambient) * np.clip(nx * LIGHT[0] + ny * LIGHT[1] + nz * LIGHT[2], 0.0, 1.0)


def normals_from_height(z, scale):
    """Unit normals of a height field z (rows go down the image, so y up is minus the row gradient)."""
    dz_row, dz_col = np.gradient(z)
    nx, ny, nz = -dz_col * scale, dz_row * scale, np.ones_like(z)
    n = np.sqrt(nx * nx + ny * ny + nz * nz)
    return nx / n, ny / n, nz / n


def finish(rgb, inside, factor=2):
    """Average a supersampled float RGB image and its boolean coverage down by `factor`: (RGB, alpha) images.
    Colours are averaged over covered samples only, so the edge does not darken toward black."""
    h, w = inside.shape
    h2, w2 = h // factor, w // factor
    cov = inside[:h2 * factor, :w2 * factor].reshape(h2, factor, w2, factor).astype(np.float32)
    col = (rgb[:h2 * factor, :w2 * factor] * cov.reshape(h2 * factor, w2 * factor)[..., None])
    col = col.reshape(h2, factor, w2, factor, 3).sum(axis=(1, 3))
    n = cov.sum(axis=(1, 3))
    col = col / np.maximum(n, 1e-6)[..., None]
    alpha = n / (factor * factor)
    return (Image.fromarray(np.clip(np.rint(col), 0, 255).astype(np.uint8)),
            Image.fromarray(np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8)))


# -------------------------------------------------------------------------------------------- objects

def render_boulder(rng, width=560):
    """A boulder sitting on the road: a lumpy dome with flat facets, brown-grey, speckled and veined."""
    w = width * 2
    h = int(w * 0.64)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xs - w / 2) / (0.48 * w)                 # -1 .. 1 across
    v = (h - 1 - ys) / (0.90 * h)                 # 0 at the base, up to about 1
    v0 = 0.16                                     # the widest part is a little above the ground
    vv = np.where(v < v0, (v - v0) * 2.2, (v - v0) / (1 - v0))
    theta = np.arctan2(vv, u)
    radius = np.ones_like(u)
    for k in range(2, 13):                        # an irregular outline: a few random harmonics
        radius += rng.normal(0, 0.10 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    rho = np.sqrt(u * u + vv * vv) / radius
    inside = (rho <= 1.0) & (v >= 0)

    z = np.sqrt(np.clip(1.0 - rho * rho, 0, 1)) * 0.9
    z = z + 0.04 * fractal_noise(rng, h, w, 6, octaves=5)
    nx, ny, nz = normals_from_height(z, scale=w * 0.45)
    # Facets: every pixel takes the tilt of its nearest seed, so the dome breaks into flat-looking faces
    # with sharp edges between them.
    seeds = rng.uniform([-0.9, 0.05], [0.9, 1.0], size=(16, 2)).astype(np.float32)
    tilts = rng.normal(0, 0.30, size=(16, 2)).astype(np.float32)
    dist = (u[..., None] - seeds[:, 0]) ** 2 + (v[..., None] - seeds[:, 1]) ** 2
    near = np.argmin(dist, axis=-1)
    nx, ny = nx + tilts[near, 0], ny + tilts[near, 1]
    n = np.sqrt(nx * nx + ny * ny + nz * nz)
    shade = lambert(nx / n, ny / n, nz / n, ambient=0.30)
    shade *= 0.55 + 0.45 * np.clip(v / 0.25, 0, 1)          # darker where it meets the road

    tone = fractal_noise(rng, h, w, 3, octaves=4)
    base = np.array([134, 114, 92], np.float32)               # brown-grey
    grey = np.array([118, 112, 106], np.float32)
    albedo = base + (grey - base) * tone[..., None]
    albedo *= (0.84 + 0.30 * fractal_noise(rng, h, w, 48, octaves=2))[..., None]   # grain of the stone
    veins = np.abs(fractal_noise(rng, h, w, 4, octaves=4) - 0.5) < 0.006
    albedo[veins] *= 0.75
    return finish(albedo * shade[..., None], inside)


def render_crate(rng, width=480):
    """A wooden crate seen from the front, a little from above: planks, a frame, a brace, a lit lid."""
    w = width * 2
    hf = int(w * 0.66)                 # front face height
    ht = int(hf * 0.11)                # visible part of the lid
    h = hf + ht
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    inset = 0.035 * w                  # the lid's far edge is narrower (perspective)
    lid = ys < ht
    lid_edge = inset * (1 - ys / max(1, ht))
    inside = np.where(lid, (xs >= lid_edge) & (xs <= w - 1 - lid_edge), True)

    grain = fractal_noise(rng, h, w, 30, octaves=3, stretch=12.0)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (ys / (0.018 * w) + 5.0 * grain))
    wood = np.array([170, 124, 76], np.float32)
    albedo = wood * (0.80 + 0.22 * rings + 0.12 * grain)[..., None]

    # Front: five planks, each its own tint, with dark gaps between them.
    fy = ys - ht
    plank = np.clip((fy / hf * 5).astype(int), 0, 4)
    tints = rng.uniform(0.82, 1.08, size=5).astype(np.float32)
    albedo = np.where(lid[..., None], albedo, albedo * tints[plank][..., None])
    gap = (~lid) & (np.abs(fy / hf * 5 - np.rint(fy / hf * 5)) < 0.035) & (fy > 2) & (fy < hf - 2)
    albedo[gap] = [38, 28, 20]

    # Frame battens and the diagonal brace stand out of the face: lighter, outlined, casting a shadow.
    bw = 0.085 * w
    frame = (~lid) & ((xs < bw) | (xs > w - 1 - bw) | (fy < 0.10 * hf) | (fy > 0.90 * hf))
    t = (xs - bw) / (w - 2 * bw)
    brace_y = 0.90 * hf - t * 0.80 * hf
    brace = (~lid) & (t >= 0) & (t <= 1) & (np.abs(fy - brace_y) < 0.055 * hf)
    batten = frame | brace
    albedo[batten] = wood * (0.95 + 0.25 * rings[batten] + 0.1 * grain[batten])[..., None] * 1.08
    shadow = np.zeros_like(batten)
    shadow[6:, 3:] = batten[:-6, :-3]                        # light from the upper left
    albedo[shadow & ~batten] *= 0.5
    outline = batten & ~(np.roll(batten, 2, 0) & np.roll(batten, -2, 0) & np.roll(batten, 2, 1)
                         & np.roll(batten, -2, 1))
    albedo[outline & ~lid] *= 0.6
    for cx in (bw / 2, w - 1 - bw / 2):                      # nails in the frame
        for cy in (0.05 * hf, 0.5 * hf, 0.95 * hf):
            nail = (xs - cx) ** 2 + (fy - cy) ** 2 < (0.009 * w) ** 2
            albedo[nail] = [60, 58, 55]

    shade = np.where(lid, 1.12, 0.80)
    shade = shade * np.where(lid, 1.0, 0.72 + 0.28 * np.clip((hf - fy) / (0.3 * hf), 0, 1))  # dimmer low down
    edge = (~lid) & ((xs < 3) | (xs > w - 4))
    shade = np.where(edge, shade * 0.7, shade)
    dirt = 0.88 + 0.16 * fractal_noise(rng, h, w, 4, octaves=4)
    return finish(albedo * (shade * dirt)[..., None], inside)


def render_wheel(rng, width=420):
    """A lost truck wheel standing on its tread, seen from the side: tyre with tread blocks, steel rim."""
    w = width * 2
    r_out = w / 2
    h = int(2 * r_out * 0.985)                    # flattened a little where it stands on the road
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xs - w / 2, ys - r_out
    r = np.sqrt(dx * dx + dy * dy) / r_out
    ang = np.arctan2(dy, dx)
    blocks = (np.sin(ang * 46) > 0) * 0.022       # tread blocks notch the outline
    inside = r <= 1.0 - blocks

    r_rim, r_side = 0.60, 0.93
    # Tyre: a rounded sidewall (torus-like normal) between the rim and the tread band.
    t = np.clip((r - (r_rim + 1.0) / 2) / ((1.0 - r_rim) / 2), -1, 1)
    radial_x, radial_y = dx / np.maximum(r * r_out, 1), -dy / np.maximum(r * r_out, 1)
    nz = np.sqrt(1 - 0.8 * t * t)
    nx, ny = radial_x * t * 0.9, radial_y * t * 0.9
    rubber = lambert(nx, ny, nz, ambient=0.45)
    albedo = np.zeros((h, w, 3), np.float32) + [40, 40, 42]
    albedo *= (0.92 + 0.16 * fractal_noise(rng, h, w, 30, octaves=2))[..., None]
    band = r > r_side
    groove = band & (np.sin(ang * 46 + 1.2) > 0.85)
    albedo[band] *= 0.85
    albedo[groove] *= 0.6
    ribs = (np.abs(r - 0.70) < 0.006) | (np.abs(r - 0.86) < 0.006)       # moulded rings on the sidewall
    albedo[ribs] *= 1.35
    dust = np.clip((fractal_noise(rng, h, w, 6, octaves=3) - 0.55) / 0.45, 0, 1)[..., None] * 0.35
    albedo = albedo * (1 - dust) + np.array([120, 112, 100], np.float32) * dust   # road dust
    shade = rubber

    # Rim: a dished steel disc, painted grey, with hand holes and a hub with wheel nuts.
    rim = r < r_rim
    dish = np.clip((r - 0.25) / 0.35, 0, 1)
    rim_n = lambert(-radial_x * 0.5 * dish, -radial_y * 0.5 * dish, np.sqrt(1 - 0.25 * dish * dish), 0.5)
    steel = np.array([150, 150, 146], np.float32) * (0.9 + 0.15 * fractal_noise(rng, h, w, 12, 3))[..., None]
    lip = rim & (r > r_rim - 0.05)
    holes = np.zeros_like(rim)
    for k in range(6):
        a = k * np.pi / 3 + 0.3
        hx, hy = np.cos(a) * 0.40 * r_out, np.sin(a) * 0.40 * r_out
        holes |= (dx - hx) ** 2 + (dy - hy) ** 2 < (0.085 * r_out) ** 2
    hub = r < 0.17
    nuts = np.zeros_like(rim)
    for k in range(8):
        a = k * np.pi / 4
        nuts |= (dx - np.cos(a) * 0.24 * r_out) ** 2 + (dy - np.sin(a) * 0.24 * r_out) ** 2 < (0.03 * r_out) ** 2
    albedo = np.where(rim[..., None], steel, albedo)
    shade = np.where(rim, rim_n, shade)
    albedo[lip] *= 0.75
    albedo[holes] = [28, 26, 25]
    albedo[hub] *= 0.8
    albedo[nuts] = [95, 92, 88]
    shade = np.where(holes, 1.0, shade)
    return finish(albedo * shade[..., None], inside)


# name -> (renderer, real height in metres, one line for meta.json)
OBJECTS = {
    "boulder": (render_boulder, 0.85, "a brown-grey boulder, about 1.3 m wide and 0.85 m high"),
    "crate": (render_crate, 0.90, "a wooden crate, about 1.2 m wide and 0.9 m high"),
    "wheel": (render_wheel, 1.05, "a truck wheel (tyre on a steel rim) standing upright, 1.05 m across"),
}


# ---------------------------------------------------------------------------------------------- clip

def make_demo(name, out_dir, seed, size, crf, preview):
    """Render object `name` and write the demo clip into out_dir (replaced); returns its meta dict."""
    render, height_m, description = OBJECTS[name]
    rng = np.random.default_rng([seed, sorted(OBJECTS).index(name)])
    rgb, alpha = render(rng)
    cut = dev.Cutout(rgb, alpha, 1, 1, (0, 0, rgb.width, rgb.height))

    w, h, num, den, total = dev.probe(BACKGROUND)
    fps = num / den
    frames = min(CLIP_FRAMES, total)
    ow, oh = size
    road = dev.ROADS["solidWhiteRight"]
    where = dev.Placement(road, ow, oh, rgb.width / rgb.height, height_m, 0.0, NEAR_Y, START_FRAME,
                          frames - START_FRAME, False, depth_ratio=DEPTH_RATIO)

    tmp = out_dir.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "masks"))
    enc = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                            "-s", f"{ow}x{oh}", "-r", f"{num}/{den}", "-i", "-", "-c:v", "libx264",
                            "-preset", "veryfast", "-crf", str(crf), "-threads", "1", "-pix_fmt", "yuv420p",
                            "-movflags", "+faststart", os.path.join(tmp, "video.mp4")], stdin=subprocess.PIPE)
    anomalous = 0
    for i, src in enumerate(dev.read_frames(BACKGROUND, 0, frames, w, h, False)):
        if (ow, oh) != (w, h):
            src = np.asarray(Image.fromarray(src).resize((ow, oh), Image.LANCZOS))
        mask = np.zeros((oh, ow), np.uint8)
        box = where.at(i)
        if box is not None:
            frame = src.astype(np.float32)
            cx, bottom, width, height = box
            dev.contact_shadow(frame, cx, bottom, width, strength=0.35)
            dev.paste(frame, mask, cut, cx, bottom, width, height, flip=False)
            src = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        anomalous += int(mask.any())
        enc.stdin.write(np.ascontiguousarray(src).tobytes())
        Image.fromarray(mask).save(os.path.join(tmp, "masks", f"{i:05d}.png"), optimize=True)
    enc.stdin.close()
    if enc.wait() != 0:
        raise RuntimeError("ffmpeg failed")
    if preview:
        Image.merge("RGBA", (*rgb.split(), alpha)).save(os.path.join(tmp, "object.png"), optimize=True)

    far, near = where.at(START_FRAME), where.at(frames - 1)
    meta = {
        "background": "solidWhiteRight.mp4",
        "background_source": "samples/solidWhiteRight.mp4: Udacity's lane-finding clip, MIT licence "
                             "(samples/LICENSE-udacity-MIT.txt); frames 0-" + str(frames - 1),
        "road": "solidWhiteRight",
        "mirrored": False,
        "object": name,
        "object_description": description,
        "object_source": "rendered procedurally by tools/devclips/make_demo_clip.py (no image data)",
        "seed": seed,
        "approach": "constant speed from frame %d to the last frame" % START_FRAME,
        "approach_seconds": round((frames - START_FRAME) / fps, 2),
        "x": round(near[0] / ow, 3),
        "bottom_y": round(near[1] / oh, 3),
        "width_near": round(near[2] / ow, 3),
        "width_far": round(far[2] / ow, 3),
        "fps": fps,
        "width": ow,
        "height": oh,
        "frames": frames,
        "clean_frames": START_FRAME,
        "anomalous_frames": anomalous,
        "mask_encoding": dev.MASK_ENCODING,
        "generator": "tools/devclips/make_demo_clip.py",
    }
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)
    return meta


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--object", choices=sorted(OBJECTS), default=DEFAULT_OBJECT,
                    help=f"the object of the bundled clip (default {DEFAULT_OBJECT})")
    ap.add_argument("--out", default=DEFAULT_OUT, help="folder of the clip (default samples/demo_obstacle)")
    ap.add_argument("--candidates", metavar="DIR",
                    help="instead: write every object, each to DIR/<object>/, with a preview object.png")
    ap.add_argument("--size", default="960x540", help="output size (960x540, or 640x360 for a smaller file)")
    ap.add_argument("--crf", type=int, default=22)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nice", type=int, default=10, help="lower this process's priority by N (default 10)")
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x"))
    if a.nice:
        os.nice(a.nice)
    jobs = ([(n, os.path.join(a.candidates, n), True) for n in sorted(OBJECTS)] if a.candidates
            else [(a.object, a.out, False)])
    for name, out, preview in jobs:
        t = time.time()
        meta = make_demo(name, out, a.seed, size, a.crf, preview)
        video = os.path.getsize(os.path.join(out, "video.mp4"))
        masks = folder_size(os.path.join(out, "masks"))
        print(f"{out}: {name}, {meta['frames']} frames, object in {meta['anomalous_frames']}, "
              f"{meta['width_far']:.3f}->{meta['width_near']:.3f} of the width; video {video / 1e6:.2f} MB, "
              f"masks {masks / 1e3:.0f} kB; {time.time() - t:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
