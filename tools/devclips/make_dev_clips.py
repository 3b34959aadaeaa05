"""Development clips for roadwatch's video evaluation: a RoadAnomaly object placed on the road of real
Udacity driving footage, coming closer as the car drives toward it, with a ground-truth mask per frame.

  python3 tools/devclips/make_dev_clips.py [OUT=/work/devclips] [--shared ../shared] [--only SUBSTRING]
                                           [--skip-existing] [--list] [--seed 0] [--crf 20] [--nice 10]

Makes 40 clips: each of the 20 development images of RoadAnomaly (../shared/data/road_anomaly_dev) is the
object twice, once on each road (solidWhiteRight; three 10 s segments of solidYellowLeft), every background
also mirrored, at three approach speeds and at several places in the ego lane or the neighbouring lane.
Every clip starts with 2 s of untouched road (frames 0-49), so false alarms can be counted on them.

Each clip is a folder OUT/<object>_<background>[_flipped]_<speed>/ holding
  video.mp4   H.264 yuv420p, the background's size and frame rate (crf 20, preset veryfast, 1 thread),
  masks/NNNNN.png  one per frame, uint8, 0 = in-distribution, 2 = anomaly (RoadAnomaly's encoding),
  meta.json   how it was made (background, road, mirrored, object, approach, position, frame counts).
OUT/clips.json lists every clip with its road, for leave-one-road-out evaluation.
Names start with the object, and each object has one clip per road, so the sorted list interleaves the two
roads and any split of it into halves holds both.

How an object is placed (a flat-road pinhole model; calibrated once per road by eye, see ROADS):
  * a point on the road at distance Z appears at row  y = vp_y + k/Z  below the vanishing point, and its
    size and its lateral offset from the vanishing point both scale with d = y - vp_y; the lane is
    3.7 m wide, which fixes pixels per metre at every row;
  * the object stands still on the road and the car drives toward it at constant speed, so 1/d grows
    linearly in time, from d_near / 7 (seven times as far) to d_near (base at 0.82-0.87 of the height, or
    as near as the neighbouring lane stays in the frame) over the approach; afterwards it stays at its
    nearest position until the clip ends;
  * the object is cut from its RoadAnomaly image with its anomaly mask: the largest connected region, plus
    any other region whose bottom is level with it (a row of cones, a group of boars, a pair of tyres);
    distant specks at other depths are dropped. It is scaled to a plausible real height (OBJECTS), its
    bottom edge on the road at row y, centred on its lane, with a faint contact shadow;
  * the mask is the pasted object's alpha >= 0.5, so it covers exactly the pixels that changed.

Deterministic: the per-clip choices come from a fixed list and a seeded generator (--seed), so the same
command writes the same masks and meta.json; x264 runs single-threaded, so with the same ffmpeg build the
videos are byte-identical too (other ffmpeg/x264 versions may encode slightly differently).
Needs numpy, Pillow (pip install pillow) and ffmpeg/ffprobe on PATH; scipy is used when present.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LANE_WIDTH_M = 3.7
CLEAN_SECONDS = 2.0
DEPTH_RATIO = 7.0          # farthest distance / nearest distance along an approach
MASK_ENCODING = "0 = in-distribution, 2 = anomaly"


@dataclass(frozen=True)
class Road:
    """Where the road is in a (not mirrored) frame, as fractions of width (x) and height (y).

    vp: the vanishing point of the lane lines. At row ref_y the ego lane is centred at ego_x and is
    lane_w wide. neighbour: -1 if the other lane of the same direction is on the left, +1 if on the right.
    """
    vp: tuple
    ref_y: float
    ego_x: float
    lane_w: float
    neighbour: int


# Measured on frames at 0, 4 and 8 s (solidWhiteRight) and 0, 9, 18 and 26 s (solidYellowLeft): the lines
# were traced from the dashes and solid lines near the bottom of the frame and intersected.
ROADS = {
    # Right-hand lane of a highway: solid white edge line on the right, dashed line and a lane on the left.
    "solidWhiteRight": Road(vp=(0.519, 0.589), ref_y=0.90, ego_x=0.535, lane_w=0.59, neighbour=-1),
    # Left-hand lane: yellow edge line on the left, dashed line and a lane on the right. The road bends
    # gently to the right far ahead; near the car the straight-line model is within a few pixels.
    "solidYellowLeft": Road(vp=(0.494, 0.577), ref_y=0.90, ego_x=0.500, lane_w=0.57, neighbour=+1),
}


@dataclass(frozen=True)
class Background:
    """A stretch of a source video used as the road behind an object."""
    name: str          # e.g. solidYellowLeft08s; the mirrored copy gets "Flipped" appended in meta.json
    video: str         # file in ../shared/data/videos
    road: str          # key of ROADS
    first_frame: int = 0
    frames: int = 0    # 0 = to the end of the video


BACKGROUNDS = {
    "solidWhiteRight": Background("solidWhiteRight", "solidWhiteRight.mp4", "solidWhiteRight"),
    # Three 10 s (250 frame) segments of the 681-frame clip; the first two overlap by 2 s.
    "solidYellowLeft00s": Background("solidYellowLeft00s", "solidYellowLeft.mp4", "solidYellowLeft", 0, 250),
    "solidYellowLeft08s": Background("solidYellowLeft08s", "solidYellowLeft.mp4", "solidYellowLeft", 200, 250),
    "solidYellowLeft17s": Background("solidYellowLeft17s", "solidYellowLeft.mp4", "solidYellowLeft", 425, 250),
}

# RoadAnomaly development image -> short name used in folder names, real height in metres of what is kept.
OBJECTS = [
    ("animals01_Guiguinto_railway_station_Calves", "calf", 1.0),
    ("animals04_17_animal_casualties_so_far_in_2006", "bullock", 1.2),
    ("animals07_Aihole_Pattadakal", "herdcalf", 1.0),
    ("animals10_bovine_cattle_beside_road", "cow", 1.45),
    ("animals13_jeune_bovin_sur_la_route", "cowpair", 1.2),
    ("animals16_Donkeys_of_Morocco", "donkey", 2.0),
    ("animals19_Porte_de_Roubaix", "horse", 1.7),
    ("animals22_red_fox_on_road", "fox", 0.5),
    ("animals25_jablonna_dziki", "boars", 0.8),
    ("animals28", "moose", 2.0),
    ("animals31_deer", "deer", 1.5),
    ("cones03_Bang_Na_Trat_Highway", "cone", 0.7),
    ("cones06_VnA_traffic_cones", "cones", 0.75),
    ("lost_tires03", "tyres", 0.65),
    ("obstacles01_boulder", "boulder", 1.0),
    ("obstacles04_cardboard_czech_hedgehog", "cardhedgehog", 1.0),
    ("obstacles07_czech_hedgehog", "hedgehog", 1.2),
    ("obstacles10_boulder4", "rock", 1.0),
    ("obstacles12_rocks4", "rocks", 0.4),
    ("vehicle01_man_carrying_dry_grass_on_bicycle", "haybike", 1.9),
]

SPEEDS = {"3s": 3.0, "6s": 6.0, "full": None}   # None: the approach lasts until the clip's last frame

# Lateral positions, in lane widths from the ego lane's centre (left negative, in the source video before any
# mirroring; meta.json's place and lane_offset describe the written video), or the neighbouring lane.
PLACES = {"centre": 0.0, "left": -0.12, "right": 0.12, "neighbour": None}


@dataclass
class ClipSpec:
    """One clip to make; everything that decides its pixels is here or derived from `seed`."""
    obj_stem: str
    obj_short: str
    height_m: float
    background: str
    mirrored: bool
    speed: str
    place: str
    seed: int
    extra: dict = field(default_factory=dict)

    @property
    def name(self):
        return "_".join([self.obj_short, self.background] + (["flipped"] if self.mirrored else []) + [self.speed])


def plan_clips(seed):
    """The fixed list of clips: two per object (one per road), speeds, places and mirroring in rotation."""
    objects = sorted(OBJECTS, key=lambda o: o[1])
    speeds = list(SPEEDS)
    places = ["centre", "left", "neighbour", "right", "centre"]     # odd length: both roads get every place
    segments = ["solidYellowLeft00s", "solidYellowLeft08s", "solidYellowLeft17s"]
    clips = []
    for i, (stem, short, height_m) in enumerate(objects):
        white = ClipSpec(stem, short, height_m, "solidWhiteRight", mirrored=(i % 2 == 1),
                         speed=speeds[i % 3], place=places[(2 * i) % len(places)], seed=0)
        yellow = ClipSpec(stem, short, height_m, segments[i % 3], mirrored=((i // 3) % 2 == 1),
                          speed=speeds[(i + 1) % 3], place=places[(2 * i + 1) % len(places)], seed=0)
        clips += [white, yellow]
    for k, c in enumerate(clips):
        c.seed = seed * 1000 + k
    return clips


def probe(path):
    """(width, height, fps numerator, fps denominator, frame count) of a video's first stream."""
    out = subprocess.check_output(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                                   "-show_entries", "stream=width,height,r_frame_rate,nb_read_frames",
                                   "-of", "json", path])
    s = json.loads(out)["streams"][0]
    num, den = (int(v) for v in s["r_frame_rate"].split("/"))
    return s["width"], s["height"], num, den, int(s["nb_read_frames"])


def label_regions(mask):
    """Connected regions (8-neighbourhood) of a boolean mask: (label image, count). scipy if present."""
    try:
        from scipy import ndimage
        return ndimage.label(mask, structure=np.ones((3, 3), int))
    except ImportError:
        pass
    labels = np.zeros(mask.shape, np.int32)
    h, w = mask.shape
    count = 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if labels[y0, x0]:
            continue
        count += 1
        labels[y0, x0] = count
        todo = deque([(y0, x0)])
        while todo:
            y, x = todo.popleft()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    v, u = y + dy, x + dx
                    if 0 <= v < h and 0 <= u < w and mask[v, u] and not labels[v, u]:
                        labels[v, u] = count
                        todo.append((v, u))
    return labels, count


@dataclass
class Cutout:
    """An object cut from a RoadAnomaly image: RGB and a binary alpha (0/255) of its bounding box."""
    rgb: Image.Image
    alpha: Image.Image
    regions_kept: int
    regions_total: int
    source_box: tuple   # x0, y0, x1, y1 in the RoadAnomaly image


def load_cutout(frames_dir, stem):
    """Cut the object out of frames/<stem>.jpg with its labels_semantic.png (value 2 = anomaly).

    Keeps the largest anomaly region and every other region of at least 5% of its area whose bottom edge
    lies within 20% of its height from the largest one's bottom (same distance from the camera); the alpha
    is shrunk by one pixel so the original background's fringe does not come along.
    """
    img = np.asarray(Image.open(os.path.join(frames_dir, stem + ".jpg")).convert("RGB"))
    anomaly = np.asarray(Image.open(os.path.join(frames_dir, stem + ".labels", "labels_semantic.png"))) == 2
    labels, count = label_regions(anomaly)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    boxes = []
    for k in range(1, count + 1):
        ys, xs = np.nonzero(labels == k)
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    main = int(np.argmax(areas))
    main_h = boxes[main][3] - boxes[main][1]
    keep = [k for k in range(count)
            if areas[k] >= 0.05 * areas[main] and abs(boxes[k][3] - boxes[main][3]) <= 0.2 * main_h]
    chosen = np.isin(labels, [k + 1 for k in keep])
    x0 = min(boxes[k][0] for k in keep); y0 = min(boxes[k][1] for k in keep)
    x1 = max(boxes[k][2] for k in keep); y1 = max(boxes[k][3] for k in keep)
    alpha = Image.fromarray((chosen[y0:y1, x0:x1] * 255).astype(np.uint8)).filter(ImageFilter.MinFilter(3))
    rgb = Image.fromarray(np.ascontiguousarray(img[y0:y1, x0:x1]))
    return Cutout(rgb, alpha, len(keep), count, (int(x0), int(y0), int(x1), int(y1)))


class Placement:
    """Where the object is in each frame of one clip: bottom-centre position and size in pixels."""

    def __init__(self, road, w, h, aspect, height_m, offset, near_y, start, approach_frames, mirrored,
                 depth_ratio=DEPTH_RATIO):
        self.road, self.w, self.h, self.aspect, self.height_m = road, w, h, aspect, height_m
        self.mirrored, self.start, self.approach_frames = mirrored, start, approach_frames
        self.vp_x, self.vp_y = road.vp[0] * w, road.vp[1] * h
        self.d_ref = road.ref_y * h - self.vp_y
        d_near = near_y * h - self.vp_y
        if offset is None:          # neighbouring lane: as near as it can come while wholly in the frame
            offset = float(road.neighbour)
            while d_near > 0.05 * h and not self._inside(d_near, offset):
                d_near *= 0.98
        self.offset, self.d_near, self.d_far = offset, d_near, d_near / depth_ratio

    def _lane_w(self, d):
        return self.road.lane_w * self.w * d / self.d_ref

    def _box(self, d, offset):
        """(centre x, bottom y, width, height) in the not-mirrored frame for an object at depth row d."""
        ego = self.vp_x + (self.road.ego_x * self.w - self.vp_x) * d / self.d_ref
        cx = ego + offset * self._lane_w(d)
        height = self.height_m * self._lane_w(d) / LANE_WIDTH_M
        return cx, self.vp_y + d, height * self.aspect, height

    def _inside(self, d, offset):
        cx, _, width, _ = self._box(d, offset)
        return (cx - width / 2 >= 0.03 * self.w and cx + width / 2 <= 0.97 * self.w
                and 0.1 * self.w <= cx <= 0.9 * self.w)

    def at(self, frame):
        """(centre x, bottom y, width, height) in output pixels, or None before the object appears."""
        if frame < self.start:
            return None
        s = min(1.0, (frame - self.start) / max(1, self.approach_frames - 1))
        d = 1.0 / (1.0 / self.d_far + s * (1.0 / self.d_near - 1.0 / self.d_far))
        cx, bottom, width, height = self._box(d, self.offset)
        if self.mirrored:
            cx = self.w - cx
        return cx, bottom, width, height


def contact_shadow(frame, cx, bottom, width, strength=0.3):
    """Darken a soft ellipse of road under the object's base (not part of the mask: it is road)."""
    h, w, _ = frame.shape
    rx, ry = 0.55 * width, max(1.5, 0.07 * width)
    x0, x1 = int(max(0, cx - 2 * rx)), int(min(w, cx + 2 * rx + 1))
    y0, y1 = int(max(0, bottom - 2 * ry)), int(min(h, bottom + 2 * ry + 1))
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    r2 = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - bottom) / ry) ** 2
    shade = 1.0 - strength * np.exp(-2.0 * r2)
    frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * shade[..., None]


def paste(frame, mask, cut, cx, bottom, width, height, flip):
    """Composite the cut-out, resized to width x height, bottom edge at `bottom`, centred at cx.

    frame is float32 HxWx3 (modified), mask uint8 HxW (set to 2 where the pasted alpha >= 0.5).
    """
    size = (max(2, int(round(width))), max(2, int(round(height))))
    rgb = cut.rgb.resize(size, Image.LANCZOS)
    alpha = cut.alpha.resize(size, Image.LANCZOS)
    if flip:
        rgb, alpha = rgb.transpose(Image.FLIP_LEFT_RIGHT), alpha.transpose(Image.FLIP_LEFT_RIGHT)
    if min(size) >= 24:     # a camera this far away would not resolve the source photo's fine detail
        rgb = rgb.filter(ImageFilter.GaussianBlur(0.5))
    x0, y0 = int(round(cx - size[0] / 2)), int(round(bottom)) - size[1]
    h, w = mask.shape
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + size[0]), min(h, y0 + size[1])
    if fx0 >= fx1 or fy0 >= fy1:
        return
    a = np.asarray(alpha, np.float32)[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0] / 255.0
    src = np.asarray(rgb, np.float32)[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    region = frame[fy0:fy1, fx0:fx1]
    frame[fy0:fy1, fx0:fx1] = region * (1.0 - a[..., None]) + src * a[..., None]
    mask[fy0:fy1, fx0:fx1][a >= 0.5] = 2


def read_frames(path, first, count, w, h, mirrored):
    """Yield RGB uint8 frames first .. first+count-1 of a video, decoded from the start (frame-exact)."""
    dec = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-vf", f"trim=start_frame={first}",
                            "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                           stdout=subprocess.PIPE)
    n = w * h * 3
    try:
        while True:
            buf = dec.stdout.read(n)
            if len(buf) < n:
                break
            frame = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            yield frame[:, ::-1] if mirrored else frame
    finally:
        dec.stdout.close()
        if dec.wait() != 0:
            raise RuntimeError(f"ffmpeg failed decoding {path}")


def place_label(place, mirrored):
    """Where the object is, as seen in the written (possibly mirrored) video."""
    if place == "neighbour":
        return "neighbouring lane"
    if mirrored and place in ("left", "right"):
        place = "right" if place == "left" else "left"
    return "ego lane, " + place


def make_clip(spec, out_dir, shared, cutouts, crf, preset):
    """Write one clip folder (video.mp4, masks/, meta.json); returns its meta dict."""
    bg = BACKGROUNDS[spec.background]
    road = ROADS[bg.road]
    video = os.path.join(shared, "data", "videos", bg.video)
    w, h, num, den, total = probe(video)
    fps = num / den
    frames = (bg.frames or total - bg.first_frame)
    frames = min(frames, total - bg.first_frame)
    if spec.obj_stem not in cutouts:
        cutouts[spec.obj_stem] = load_cutout(os.path.join(shared, "data", "road_anomaly_dev", "frames"),
                                             spec.obj_stem)
    cut = cutouts[spec.obj_stem]
    rng = np.random.default_rng(spec.seed)
    near_y = float(rng.uniform(0.82, 0.87))
    offset = PLACES[spec.place]
    if offset is not None:
        offset += float(rng.uniform(-0.03, 0.03))
    flip_object = bool(rng.integers(2))
    start = int(round(CLEAN_SECONDS * fps))
    approach = SPEEDS[spec.speed]
    approach_frames = frames - start if approach is None else int(round(approach * fps))
    where = Placement(road, w, h, cut.rgb.width / cut.rgb.height, spec.height_m, offset, near_y, start,
                      approach_frames, spec.mirrored)

    clip_dir = os.path.join(out_dir, spec.name)
    tmp_dir = clip_dir + ".partial"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(os.path.join(tmp_dir, "masks"))
    enc = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                            "-s", f"{w}x{h}", "-r", f"{num}/{den}", "-i", "-", "-c:v", "libx264",
                            "-preset", preset, "-crf", str(crf), "-threads", "1", "-pix_fmt", "yuv420p",
                            "-movflags", "+faststart", os.path.join(tmp_dir, "video.mp4")],
                           stdin=subprocess.PIPE)
    anomalous, first_anomalous, written = 0, None, 0
    for i, src in enumerate(read_frames(video, bg.first_frame, frames, w, h, spec.mirrored)):
        mask = np.zeros((h, w), np.uint8)
        box = where.at(i)
        if box is None:
            out = src
        else:
            frame = src.astype(np.float32)
            cx, bottom, width, height = box
            contact_shadow(frame, cx, bottom, width)
            paste(frame, mask, cut, cx, bottom, width, height, flip_object)
            out = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        enc.stdin.write(np.ascontiguousarray(out).tobytes())
        Image.fromarray(mask).save(os.path.join(tmp_dir, "masks", f"{i:05d}.png"), optimize=True)
        if mask.any():
            anomalous += 1
            first_anomalous = i if first_anomalous is None else first_anomalous
        written = i + 1
    enc.stdin.close()
    if enc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed encoding {spec.name}")
    far = where.at(start)
    near = where.at(start + approach_frames - 1)
    meta = {
        "name": spec.name,
        "background": bg.name + ("Flipped" if spec.mirrored else ""),
        "road": bg.road,
        "mirrored": spec.mirrored,
        "source_video": bg.video,
        "source_first_frame": bg.first_frame,
        "object": spec.obj_stem + ".jpg",
        "object_short": spec.obj_short,
        "object_height_m": spec.height_m,
        "object_mirrored": flip_object,
        "object_regions_kept": f"{cut.regions_kept} of {cut.regions_total}",
        "object_source_box": list(cut.source_box),
        "approach": spec.speed,
        "approach_seconds": round(approach_frames / fps, 2),
        "place": place_label(spec.place, spec.mirrored),
        "lane_offset": round(where.offset * (-1 if spec.mirrored else 1), 3),
        "x": round(near[0] / w, 3),
        "x_far": round(far[0] / w, 3),
        "bottom_y": round(near[1] / h, 3),
        "width_near": round(near[2] / w, 3),
        "width_far": round(far[2] / w, 4),
        "fps": fps,
        "width": w,
        "height": h,
        "frames": written,
        "clean_frames": start,
        "first_anomalous_frame": first_anomalous,
        "anomalous_frames": anomalous,
        "mask_encoding": MASK_ENCODING,
        "seed": spec.seed,
        "generator": "tools/devclips/make_dev_clips.py",
    }
    with open(os.path.join(tmp_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    shutil.rmtree(clip_dir, ignore_errors=True)
    os.rename(tmp_dir, clip_dir)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default="/work/devclips", help="output folder (default /work/devclips)")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(REPO), "shared"),
                    help="the shared test-data folder (default: ../shared beside the repository)")
    ap.add_argument("--seed", type=int, default=0, help="base seed; the default makes the reference set")
    ap.add_argument("--only", default="", help="make only clips whose name contains this")
    ap.add_argument("--skip-existing", action="store_true", help="keep clip folders already made")
    ap.add_argument("--list", action="store_true", help="print the planned clips and stop")
    ap.add_argument("--crf", type=int, default=20)
    ap.add_argument("--preset", default="veryfast", help="x264 preset (default veryfast)")
    ap.add_argument("--nice", type=int, default=10, help="lower this process's priority by N (default 10)")
    a = ap.parse_args()

    plan = plan_clips(a.seed)
    if a.list:
        for c in plan:
            print(f"{c.name:48s} {c.place:10s} seed {c.seed}")
        return
    if a.nice:
        os.nice(a.nice)
    os.makedirs(a.out, exist_ok=True)
    cutouts = {}
    t_all = time.time()
    for c in plan:
        if a.only and a.only not in c.name:
            continue
        if a.skip_existing and os.path.exists(os.path.join(a.out, c.name, "meta.json")):
            continue
        t = time.time()
        meta = make_clip(c, a.out, a.shared, cutouts, a.crf, a.preset)
        print(f"{c.name}: {meta['frames']} frames, object in {meta['anomalous_frames']} "
              f"(from {meta['first_anomalous_frame']}), x {meta['x']}, {time.time() - t:.1f} s", flush=True)

    # The index covers every clip present in OUT that this generator made, so partial runs stay consistent.
    listed = []
    for c in plan:
        path = os.path.join(a.out, c.name, "meta.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            m = json.load(f)
        listed.append({k: m[k] for k in ("name", "road", "background", "mirrored", "object", "approach_seconds",
                                         "place", "x", "frames", "clean_frames", "anomalous_frames")})
    listed.sort(key=lambda m: m["name"])
    index = {
        "generator": "tools/devclips/make_dev_clips.py",
        "seed": a.seed,
        "mask_encoding": MASK_ENCODING,
        "roads": {r: [m["name"] for m in listed if m["road"] == r] for r in sorted(ROADS)},
        "clips": listed,
    }
    with open(os.path.join(a.out, "clips.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print(f"{len(listed)} clips in {a.out}/clips.json; this run took {time.time() - t_all:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
