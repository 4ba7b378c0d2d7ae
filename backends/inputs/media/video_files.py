"""A short clip, bounded: MP4/MOV/WEBM/MKV through imageio-ffmpeg's ffmpeg, GIF through Pillow, as frames.

The container's duration, frame rate and frame size are probed before a frame is decoded (an ffmpeg probe, or a
GIF block scan), ffmpeg is told to stop after the time and frame limits and is killed at a deadline, and the kept
frames go into one preallocated array. Defaults: a 200 MB file, 20 s, 240 decoded frames, sides <= 4096 px,
512 Mpx decoded in all (all 240 frames of 1080p; 64 frames of 4K), 256 MB of kept frames.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import select
import struct
import subprocess
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ...core.errors import InputError
from ..validate import MB, PathLike, fail, human_number, human_size, number, open_bounded, open_regular
from .shared import MIN_SIDE, pillow_pixel_limit, to_rgb

log = logging.getLogger(__name__)

MAX_VIDEO_BYTES = 200 * MB
MAX_VIDEO_SECONDS = 20.0
MAX_VIDEO_FRAMES = 240
MAX_VIDEO_SIDE = 4096
MAX_VIDEO_KEPT_BYTES = 256 * MB  # decoded frames held at once (240 frames of 640x480 is 221 MB)
MAX_VIDEO_DECODE_PIXELS = 512 * 1024 * 1024  # frames decoded x pixels per frame: ~2 s of work on 2 CPU cores
MAX_VIDEO_DECODE_SECONDS = 60.0

_VIDEO_KINDS = "MP4, MOV, WEBM, MKV or GIF"


def _video_demuxer(head: bytes) -> str | None:
    """The one ffmpeg demuxer we allow for this content, chosen by magic number so ffmpeg never guesses
    (guessing would let a file be read as a playlist that names other files)."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip") and head[4:12] not in (
        b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif",
    ):
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return None


class _Frames:
    """Where decoded frames go: one preallocated (capacity, H, W, 3) uint8 array, so the memory is the kept frames
    and nothing more (no allocation per frame, no stacking copy at the end).

    want=None keeps every frame, up to `capacity` (on_full() raises beyond it). With `want` and a known frame
    count `expected`, the kept indices are planned up front (evenly spread, first and last included) and only
    those are stored; with `want` but no count, every frame is stored and `want` are picked at the end.
    """

    def __init__(self, shape: tuple[int, int], want: int | None, expected: int | None, capacity: int, on_full):
        self.want, self.on_full = want, on_full
        self.plan: dict[int, int] | None = None
        if want is not None and expected:
            picks = np.unique(np.round(np.linspace(0, expected - 1, min(want, expected))).astype(int))
            self.plan = {int(i): k for k, i in enumerate(picks)}
            capacity = len(picks)
        self.buffer = np.empty((max(1, capacity), shape[0], shape[1], 3), np.uint8)
        self.capacity = capacity
        self.scratch: np.ndarray | None = None
        self.count = 0
        self.seen = 0

    def wanted(self, index: int) -> bool:
        return index in self.plan if self.plan is not None else self.count < self.capacity

    def slot(self, index: int) -> np.ndarray:
        """The (H, W, 3) array that frame `index` should be written into."""
        if self.plan is not None and index in self.plan:
            return self.buffer[self.plan[index]]
        if self.plan is None and self.count < self.capacity:
            return self.buffer[self.count]
        if self.scratch is None:
            self.scratch = np.empty(self.buffer.shape[1:], np.uint8)
        return self.scratch

    def commit(self, index: int) -> None:
        """Frame `index` has been written into slot(index)."""
        self.seen = index + 1
        if self.plan is not None:
            self.count += index in self.plan
        elif self.count < self.capacity:
            self.count += 1
        else:
            self.on_full()

    def put(self, index: int, frame: np.ndarray) -> None:
        if self.wanted(index):
            self.slot(index)[...] = frame
        self.commit(index)

    def result(self) -> np.ndarray:
        n = self.count
        if self.plan is None and self.want is not None and n > self.want:
            # Unknown length: pick `want` evenly, moving them forward in place (pick[j] >= j, so no overwrites).
            for j, i in enumerate(np.round(np.linspace(0, n - 1, self.want)).astype(int)):
                if i != j:
                    self.buffer[j] = self.buffer[i]
            n = self.want
        return self.buffer[:n]


def _too_much_work(shown: str, width: int, height: int, work: int) -> InputError:
    return fail(
        f"The video {shown} is {width}x{height} pixels, so at most {max(1, work // (width * height))} of its frames "
        "can be decoded; trim it or lower its resolution."
    )


def _gif_scan(data: bytes, stop_after: int, max_blocks: int = 1_000_000) -> tuple[int, int, int, int]:
    """(frames, total delay in ms, canvas width, canvas height) from a GIF's block structure, decoding no pixels.

    Delays of 0-10 ms count as 100 ms, as browsers play them. The canvas grows to cover every frame (as Pillow
    does). Stops after `stop_after` + 1 frames; raises ValueError when the structure is broken or has more than
    `max_blocks` data sub-blocks (a normal GIF has one per 255 bytes, so that is about 250 MB).
    """
    n = len(data)
    if n < 13:
        raise ValueError("too short")
    width, height = struct.unpack("<HH", data[6:10])
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    frames = total_ms = delay = blocks = 0
    while pos < n:
        kind = data[pos]
        pos += 1
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            if pos >= n:
                raise ValueError("truncated extension")
            if data[pos] == 0xF9 and pos + 5 <= n and data[pos + 1] >= 4:
                delay = 10 * struct.unpack("<H", data[pos + 3 : pos + 5])[0]
            pos += 1
        elif kind == 0x2C:  # image: descriptor, optional palette, LZW code size, sub-blocks
            if pos + 10 > n:
                raise ValueError("truncated image descriptor")
            x0, y0, w, h = struct.unpack("<4H", data[pos : pos + 8])
            flags = data[pos + 8]
            width, height = max(width, x0 + w), max(height, y0 + h)
            pos += 9 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            frames += 1
            total_ms += 100 if delay <= 10 else delay
            delay = 0
        else:
            break  # not a GIF block: the animation ends here
        while True:  # skip the sub-blocks
            if pos >= n:
                raise ValueError("truncated data")
            size = data[pos]
            pos += 1 + size
            blocks += 1
            if size == 0:
                break
            if blocks > max_blocks:
                raise ValueError("too many blocks")
        if frames > stop_after:
            break
    return frames, total_ms, width, height


def _gif_video(data: bytes, shown: str, *, max_seconds, max_frames, max_side, min_side, want, budget, work,
               deadline):
    damaged = f"The animation {shown} is damaged and could not be decoded; re-export it as GIF or MP4."
    try:
        count, total_ms, width, height = _gif_scan(data, max_frames)
    except ValueError:
        raise fail(damaged) from None
    if count == 0:
        raise fail(f"The animation {shown} has no frames.")
    if max(width, height) > max_side or min(width, height) < min_side:
        raise fail(
            f"The animation {shown} is {width}x{height} pixels; each side must be from {min_side} to {max_side} pixels."
        )
    if count > max_frames:
        raise fail(f"The animation {shown} has more than {max_frames} frames; at most {max_frames} are allowed.")
    if total_ms > max_seconds * 1000:
        raise fail(
            f"The animation {shown} is {total_ms / 1000:.1f} s long; at most {human_number(max_seconds)} s is allowed."
        )
    if count * width * height > work:
        raise _too_much_work(shown, width, height, work)
    frame_bytes = width * height * 3
    keep = want or count
    if min(keep, count) * frame_bytes > budget:
        raise fail(
            f"Keeping {min(keep, count)} frames of {width}x{height} needs "
            f"{human_size(min(keep, count) * frame_bytes)}; "
            f"at most {human_size(budget)} is allowed, so use at most {max(1, budget // frame_bytes)} frames or a "
            "smaller animation."
        )

    def full() -> None:  # more frames than the scan counted: Pillow and the scan disagree
        raise fail(damaged)

    store = _Frames((height, width), want, count, count, full)
    decoded_pixels = 0
    index = 0
    with pillow_pixel_limit(max_side * max_side):
        try:
            im = Image.open(io.BytesIO(data), formats=["GIF"])
        except Exception:
            raise fail(damaged) from None
        with im:
            try:
                while True:
                    if index:
                        try:
                            im.seek(index)
                        except EOFError:
                            break
                    # The scan bounds these already; checked again in case Pillow reads the file differently.
                    if index >= max_frames or max(im.size) > max_side:
                        raise fail(damaged)
                    decoded_pixels += im.width * im.height
                    if decoded_pixels > work:
                        raise _too_much_work(shown, im.width, im.height, work)
                    if time.monotonic() > deadline:
                        raise fail(f"The animation {shown} took too long to decode; use a shorter or smaller one.")
                    im.load()
                    frame = to_rgb(im)
                    if frame.size != (width, height):  # Pillow grew the canvas for a later, larger frame
                        if frame.width > width or frame.height > height:
                            raise fail(damaged)
                        canvas = Image.new("RGB", (width, height), (255, 255, 255))
                        canvas.paste(frame, (0, 0))
                        frame = canvas
                    store.put(index, np.asarray(frame))
                    index += 1
            except InputError:
                raise
            except Exception:
                raise fail(damaged) from None
    if not store.count:
        raise fail(f"The animation {shown} has no frames that could be decoded.")
    frames = store.result()
    fps = count / (total_ms / 1000.0)
    return frames, float(fps * len(frames) / index)


def video(
    path: PathLike,
    *,
    max_seconds: float = MAX_VIDEO_SECONDS,
    max_frames: int = MAX_VIDEO_FRAMES,
    max_side: int = MAX_VIDEO_SIDE,
    sample: int | None = None,
    min_side: int = MIN_SIDE,
    max_bytes: int = MAX_VIDEO_BYTES,
    max_kept_bytes: int = MAX_VIDEO_KEPT_BYTES,
    max_decode_pixels: int = MAX_VIDEO_DECODE_PIXELS,
    max_decode_seconds: float = MAX_VIDEO_DECODE_SECONDS,
) -> tuple[np.ndarray, float]:
    """A short clip as frames (T, H, W, 3) uint8 and its frame rate in frames per second.

    MP4/MOV (demuxed as mov) and WEBM/MKV (matroska) through imageio-ffmpeg's ffmpeg, GIF through Pillow. The
    container's duration, frame rate and frame size are probed before any frame is decoded; ffmpeg is told to
    stop after max_seconds + 1 s and the frame caps, and is killed at the deadline, so a container that lies is
    still bounded. Rotation metadata (multiples of 90 degrees) is applied, as players do.
    sample: keep this many frames spread evenly over the clip (fps is scaled so the duration stays the same);
    None keeps every frame, which must be at most max_frames and fit in max_kept_bytes.
    max_decode_pixels bounds the decoding work (frames decoded x width x height) whichever frames are kept;
    max_decode_seconds is a last-resort wall-clock stop.
    """
    want = None if sample is None else int(number("number of frames", sample, lo=1, hi=max_frames, integer=True))
    if not isinstance(path, (str, os.PathLike)):
        raise fail(f"The video must be given as a file path, not {type(path).__name__}; save the upload first.")
    fh, real, _size, shown = open_bounded(path, "video", max_bytes)
    with fh:
        head = fh.read(64)
        demuxer = _video_demuxer(head)
        if demuxer is None:
            raise fail(f"The file {shown} is not a video in an allowed format; use {_VIDEO_KINDS}.")
        data = head + fh.read(max_bytes) if demuxer == "gif" else b""
    deadline = time.monotonic() + max_decode_seconds
    if demuxer == "gif":
        return _gif_video(
            data, shown, max_seconds=max_seconds, max_frames=max_frames, max_side=max_side, min_side=min_side,
            want=want, budget=max_kept_bytes, work=max_decode_pixels, deadline=deadline,
        )
    return _ffmpeg_video(
        real, demuxer, shown, max_seconds=max_seconds, max_frames=max_frames, max_side=max_side,
        min_side=min_side, want=want, budget=max_kept_bytes, work=max_decode_pixels, deadline=deadline,
    )


# Anchored on ffmpeg's exact two-space indent: metadata lines (which a file controls) are indented by 4 or more.
_PROBE_DURATION = re.compile(r"^  Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.M)
_PROBE_VIDEO = re.compile(r"^  Stream #0:\d+\S*: Video: (.*)$", re.M)
_PROBE_SIZE = re.compile(r", (\d{1,6})x(\d{1,6})(?=[ ,\[]|$)")
_PROBE_FPS = re.compile(r", (\d+(?:\.\d+)?) fps")
_PROBE_TBR = re.compile(r", (\d+(?:\.\d+)?) tbr")
_PROBE_ROTATION = re.compile(r"^[ \t]*Display Matrix: rotation of (-?\d+(?:\.\d+)?) degrees", re.M)


def video_frame_size(path: str) -> tuple[int, int] | None:
    """(width, height) of a clip's frames from its header, by the decoder's own probe: the demuxer chosen by magic
    number (never guessed: a playlist naming another server-local file is never opened) and the Video stream line
    anchored as ffmpeg writes it (a metadata title cannot pose as one). None when the header does not say."""
    fh, real, _ = open_regular(path, "video")
    with fh:
        head = fh.read(64)
    demuxer = _video_demuxer(head)
    if demuxer is None or demuxer == "gif":  # not a video we read; GIFs are sized by Pillow (`budget.video_size`)
        return None
    stream = _PROBE_VIDEO.search(_ffmpeg_probe(real, demuxer, timeout=10.0))
    size = _PROBE_SIZE.search(stream.group(1)) if stream else None
    return (int(size.group(1)), int(size.group(2))) if size else None


_PROBE_AUDIO = re.compile(r"^  Stream #0:\d+\S*: Audio: ", re.M)


def add_audio(video: PathLike, source: PathLike, out: PathLike, timeout: float = 60.0) -> bool:
    """Write `out`: the pictures of `video` (an mp4 this program wrote, copied as they are) with the first sound
    track of `source` (the visitor's clip, opened as `video()` opens it: its demuxer chosen by magic number, the
    file protocol only), re-encoded as AAC and cut to the pictures' length. False, and nothing written, when the
    source has no sound, is a GIF, or ffmpeg fails or takes longer than `timeout` seconds: the edit stays silent."""
    fh, real, _ = open_regular(source, "video")
    with fh:
        demuxer = _video_demuxer(fh.read(64))
    if demuxer in (None, "gif") or not _PROBE_AUDIO.search(_ffmpeg_probe(real, demuxer, timeout=10.0)):
        return False
    cmd = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-protocol_whitelist", "file",
           "-f", "mp4", "-i", str(video), "-f", demuxer, "-i", real, "-map", "0:v:0", "-map", "1:a:0",
           "-c:v", "copy", "-c:a", "aac", "-shortest", "-f", "mp4", str(out)]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        done = None
    if done is None or done.returncode != 0:
        with contextlib.suppress(OSError):
            os.unlink(out)
        return False
    return True


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg  # the ffmpeg binary imageio uses; loaded only when a video arrives

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_probe(real: str, demuxer: str, timeout: float) -> str:
    """ffmpeg's description of the input (no output, nothing decoded), or '' when it could not say in time."""
    cmd = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file", "-f", demuxer, "-i", real]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return ""
    return done.stderr[: 1 << 20].decode("utf-8", "replace")


def _read_frame(pipe, frame: np.ndarray, deadline: float, stall_s: float) -> bool:
    """Fill `frame` from the raw pipe; False at a clean end of stream. Never blocks past the deadline."""
    view = memoryview(frame).cast("B")
    got = 0
    while got < len(view):
        if os.name == "posix":
            wait = min(deadline - time.monotonic(), stall_s)
            if wait <= 0 or not select.select([pipe], [], [], wait)[0]:
                raise TimeoutError
        n = pipe.readinto(view[got:])
        if not n:
            return False  # end of stream (a partial last frame is dropped)
        got += n
    return True



@dataclass(frozen=True)
class _Clip:
    """What ffmpeg's probe says of a clip before any frame is decoded: its frame size (as stored), frame rate
    (0 when not said), duration in seconds (0 when not said) and the quarter turns that display it upright."""

    width: int
    height: int
    fps: float
    duration: float
    turns: int


def _probe_clip(real: str, demuxer: str, shown: str, damaged: str) -> _Clip:
    """The clip's header by ffmpeg's probe (2 s limit, nothing decoded); a file with no picture stream, or one the
    probe cannot read, is refused."""
    info = _ffmpeg_probe(real, demuxer, timeout=2.0)
    stream = _PROBE_VIDEO.search(info)
    size = _PROBE_SIZE.search(stream.group(1)) if stream else None
    if info and "Input #0" in info and stream is None and _PROBE_AUDIO.search(info):
        raise fail(f"The file {shown} holds only sound, no pictures; give a video clip.")  # not "damaged"
    if not info or "Input #0" not in info or size is None:
        raise fail(damaged)
    found = _PROBE_FPS.search(stream.group(1)) or _PROBE_TBR.search(stream.group(1))
    fps = float(found.group(1)) if found else 0.0
    found = _PROBE_DURATION.search(info)
    duration = 3600 * int(found.group(1)) + 60 * int(found.group(2)) + float(found.group(3)) if found else 0.0
    found = _PROBE_ROTATION.search(info)
    turns = 0
    if found:  # counter-clockwise degrees to display correctly; ffmpeg itself ignores odd angles too
        angle = float(found.group(1)) % 360
        if min(abs(angle - q) for q in (0, 90, 180, 270, 360)) < 1:
            turns = int(round(angle / 90)) % 4
    return _Clip(int(size.group(1)), int(size.group(2)), fps if 0 < fps <= 1000 else 0.0, duration, turns)


def _check_clip(clip: _Clip, shown: str, *, max_seconds, max_frames, max_side, min_side, want, budget,
                work) -> int | None:
    """Refuse, from the probe alone, a clip whose sides, length, frame count, decoding work or kept frames are
    over their limits; returns the frame count the header implies (None when it does not say)."""
    width, height, fps, duration = clip.width, clip.height, clip.fps, clip.duration
    if max(width, height) > max_side or min(width, height) < min_side:
        raise fail(
            f"The video {shown} is {width}x{height} pixels; each side must be from {min_side} to {max_side} pixels."
        )
    if duration > max_seconds:
        raise fail(f"The video {shown} is {duration:.1f} s long; at most {human_number(max_seconds)} s is allowed.")
    expected = int(math.ceil(duration * fps - 1e-6)) if duration and fps else None
    if expected and expected > max_frames:
        raise fail(
            f"The video {shown} has about {expected} frames; at most {max_frames} are allowed, "
            "so trim it or lower its frame rate."
        )
    if expected and expected * width * height > work:
        raise _too_much_work(shown, width, height, work)
    frame_bytes = width * height * 3
    keep = want if want is not None else expected
    if keep and keep * frame_bytes > budget:
        fits = max(1, budget // frame_bytes)
        seconds = f" ({fits / fps:.1f} s at its {fps:g} fps)" if fps else ""
        raise fail(
            f"Keeping {keep} frames of {width}x{height} needs {human_size(keep * frame_bytes)}; at most "
            f"{human_size(budget)} is allowed, so use a clip of at most {fits} frames{seconds} or a smaller video."
        )
    return expected


def _decode_into(store: _Frames, real: str, demuxer: str, clip: _Clip, shown: str, damaged: str, *, cap,
                 max_seconds, max_frames, work, deadline) -> None:
    """Run ffmpeg on the clip and put its frames into `store`: raw RGB of the probed size from a pipe, read under
    the deadline, at most `cap` frames (ffmpeg is told to stop after cap + 1), turned upright; ffmpeg is killed
    when this returns or raises.

    ffmpeg is given the demuxer (no format guessing), only the file protocol, no autorotation (we rotate by the
    probed display matrix, in multiples of 90 degrees), and the time and frame caps."""
    width, height, turns = clip.width, clip.height, clip.turns
    cmd = [
        _ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "quiet", "-protocol_whitelist", "file",
        "-noautorotate", "-f", demuxer, "-t", f"{max_seconds + 1:g}", "-i", real,
        "-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v", str(cap + 1),
        "-vf", f"scale={width}:{height}", "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            bufsize=0)
    raw = np.empty((height, width, 3), np.uint8) if turns else None
    try:
        index = 0
        while True:
            target = raw if turns else store.slot(index)
            try:
                if not _read_frame(proc.stdout, target, deadline, stall_s=5.0):
                    break
            except TimeoutError:
                raise fail(f"The video {shown} took too long to decode; use a shorter or smaller clip.") from None
            if index >= max_frames:
                raise fail(f"The video {shown} has more than {max_frames} frames; at most {max_frames} are allowed.")
            if index >= cap:
                raise _too_much_work(shown, width, height, work)
            if turns:
                store.put(index, np.rot90(raw, turns))
            else:
                store.commit(index)
            index += 1
    except InputError:
        raise
    except Exception:
        raise fail(damaged) from None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()


def _ffmpeg_video(real, demuxer, shown, *, max_seconds, max_frames, max_side, min_side, want, budget, work,
                  deadline):
    """Decode with imageio-ffmpeg's ffmpeg binary in our own subprocess.

    imageio's reader waits up to 10 s for a log line it can parse, and a damaged file can print a warning that
    hides that line (found by fuzzing), so we probe the container ourselves (`_probe_clip`), check it against the
    limits (`_check_clip`), then read raw frames from a pipe with a wall-clock deadline (`_decode_into`).
    """
    damaged = f"The video {shown} is damaged or uses an unsupported codec; re-encode it as MP4 (H.264)."
    clip = _probe_clip(real, demuxer, shown, damaged)
    expected = _check_clip(clip, shown, max_seconds=max_seconds, max_frames=max_frames, max_side=max_side,
                           min_side=min_side, want=want, budget=budget, work=work)
    width, height = clip.width, clip.height
    frame_bytes = width * height * 3
    cap = min(max_frames, work // (width * height))

    def full() -> None:
        if cap * frame_bytes > budget:
            raise fail(
                f"The video {shown} needs more than {human_size(budget)} once decoded; use at most "
                f"{max(1, budget // frame_bytes)} frames or a smaller video."
            )
        if cap == max_frames:
            raise fail(f"The video {shown} has more than {max_frames} frames; at most {max_frames} are allowed.")
        raise _too_much_work(shown, width, height, work)

    shape = (width, height) if clip.turns % 2 else (height, width)
    store = _Frames(shape, want, expected, min(cap, budget // frame_bytes), full)
    _decode_into(store, real, demuxer, clip, shown, damaged, cap=cap, max_seconds=max_seconds,
                 max_frames=max_frames, work=work, deadline=deadline)
    decoded = store.seen
    if decoded == 0:
        raise fail(f"The video {shown} has no frames that could be decoded; re-encode it as MP4 (H.264).")
    fps = clip.fps
    if fps == 0.0:
        fps = decoded / clip.duration if clip.duration > 0 else 30.0
        log.warning("frame rate of %s unknown; using %.3g fps", shown, fps)
    if decoded / fps > max_seconds + 0.5:  # the container under-reported its length
        limit = human_number(max_seconds)
        raise fail(f"The video {shown} is longer than {limit} s; at most {limit} s is allowed.")
    frames = store.result()
    return frames, float(fps * len(frames) / decoded)
