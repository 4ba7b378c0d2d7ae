"""A short clip, bounded: MP4/MOV/WEBM/MKV through imageio-ffmpeg's ffmpeg, GIF through Pillow, as frames.

The container's duration, frame rate and frame size are probed before a frame is decoded (an ffmpeg probe, or a
GIF block scan), ffmpeg is told to stop after the time and frame limits and is killed at a deadline. Three ways to
read a clip, each pass under the same checks: `video` (the kept frames in one preallocated array), `video_keyframes`
(only the frames `spread_frames` picks) and `video_frames` (every frame, one at a time, none kept). Defaults: a
200 MB file, 20 s, 300 decoded frames, sides <= 4096 px, 640 Mpx decoded a pass (300 frames of 1080p; 80 of 4K
UHD), 256 MB of kept frames.
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
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from ...core.errors import InputError
from ..validate import MB, PathLike, fail, human_number, human_size, number, open_bounded, open_regular
from .shared import MIN_SIDE, pillow_pixel_limit, to_rgb

log = logging.getLogger(__name__)

MAX_VIDEO_BYTES = 200 * MB
MAX_VIDEO_SECONDS = 20.0
MAX_VIDEO_FRAMES = 300  # a 10 s clip at 30 fps (issue 34's clip); the video tab streams them, keeping none
MAX_VIDEO_SIDE = 4096
MAX_VIDEO_KEPT_BYTES = 256 * MB  # frames held at once (the video tab's 24 keyframes of 1080p are 142 MB)
# Frames decoded x pixels per frame, in one pass: 300 frames of 1920x1080 are 593 Mpx, which the video tab decodes
# twice (its keyframes, then every frame streamed for the carry; three passes when the header misstates the frame
# count): ~2.5 s a pass on 2 CPU cores
MAX_VIDEO_DECODE_PIXELS = 640 * 1024 * 1024
MAX_VIDEO_DECODE_SECONDS = 60.0  # of decoding a pass (time a consumer of `video_frames` spends is not counted)


@dataclass(frozen=True)
class _Limits:
    """The keyword limits of `video`, `video_keyframes` and `video_frames` (the module's defaults)."""

    max_seconds: float = MAX_VIDEO_SECONDS
    max_frames: int = MAX_VIDEO_FRAMES
    max_side: int = MAX_VIDEO_SIDE
    min_side: int = MIN_SIDE
    max_bytes: int = MAX_VIDEO_BYTES
    max_kept_bytes: int = MAX_VIDEO_KEPT_BYTES
    max_decode_pixels: int = MAX_VIDEO_DECODE_PIXELS
    max_decode_seconds: float = MAX_VIDEO_DECODE_SECONDS


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


def spread_frames(count: int, want: int) -> np.ndarray:
    """The indices of `want` of `count` frames spread evenly, first and last included (all of them when `want` >=
    `count`), ascending: the frames `video(sample=)` and `video_keyframes` keep."""
    return np.unique(np.round(np.linspace(0, count - 1, min(want, count))).astype(int))


class _Frames:
    """Where decoded frames go: one preallocated (capacity, H, W, 3) uint8 array, so the memory is the kept frames
    and nothing more (no allocation per frame, no stacking copy at the end).

    want=None keeps every frame, up to `capacity` (on_full() raises beyond it). With `want` and a known frame
    count `expected`, the kept indices are planned up front (`spread_frames`) and only those are stored; with
    `want` but no count, every frame is stored and `want` are picked at the end.
    """

    def __init__(self, shape: tuple[int, int], want: int | None, expected: int | None, capacity: int, on_full):
        self.want, self.on_full = want, on_full
        self.plan: dict[int, int] | None = None
        if want is not None and expected:
            picks = spread_frames(expected, want)
            self.plan = {int(i): k for k, i in enumerate(picks)}
            capacity = len(picks)
        self.buffer = np.empty((max(1, capacity), shape[0], shape[1], 3), np.uint8)
        self.capacity = capacity
        self.scratch: np.ndarray | None = None
        self.count = 0
        self.seen = 0

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

    def result(self) -> np.ndarray:
        n = self.count
        if self.plan is None and self.want is not None and n > self.want:
            # Unknown length: pick `want` evenly, moving them forward in place (pick[j] >= j, so no overwrites).
            for j, i in enumerate(spread_frames(n, self.want)):
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


def _gif_header(data: bytes, shown: str, damaged: str, lim: _Limits) -> tuple[int, float, int, int]:
    """(frames, fps, canvas width, canvas height) of a GIF by its block scan, refused when a limit is over."""
    try:
        count, total_ms, width, height = _gif_scan(data, lim.max_frames)
    except ValueError:
        raise fail(damaged) from None
    if count == 0:
        raise fail(f"The animation {shown} has no frames.")
    if max(width, height) > lim.max_side or min(width, height) < lim.min_side:
        raise fail(f"The animation {shown} is {width}x{height} pixels; each side must be from {lim.min_side} to "
                   f"{lim.max_side} pixels.")
    if count > lim.max_frames:
        raise fail(f"The animation {shown} has more than {lim.max_frames} frames; at most {lim.max_frames} are "
                   "allowed.")
    if total_ms > lim.max_seconds * 1000:
        raise fail(f"The animation {shown} is {total_ms / 1000:.1f} s long; at most {human_number(lim.max_seconds)} "
                   "s is allowed.")
    if count * width * height > lim.max_decode_pixels:
        raise _too_much_work(shown, width, height, lim.max_decode_pixels)
    return count, count / (total_ms / 1000.0), width, height


def _gif_frames(data: bytes, shown: str, damaged: str, lim: _Limits, count: int, size: tuple[int, int],
                into: Callable[[int], np.ndarray], deadline: float) -> Iterator[tuple[int, np.ndarray]]:
    """Decode the GIF with Pillow, frame by frame: (index, into(index) holding it). Pillow's pixel guard is held
    for each frame's decode only, not while the consumer works between frames."""
    width, height = size
    with pillow_pixel_limit(lim.max_side * lim.max_side):
        try:
            im = Image.open(io.BytesIO(data), formats=["GIF"])
        except Exception:
            raise fail(damaged) from None
    decoded_pixels = 0
    with im:
        for index in range(count + 1):
            with pillow_pixel_limit(lim.max_side * lim.max_side):
                try:
                    if index:
                        im.seek(index)
                except EOFError:
                    return
                except Exception:
                    raise fail(damaged) from None
                # The scan bounds these already; checked again in case Pillow reads the file differently.
                if index >= count or max(im.size) > lim.max_side:
                    raise fail(damaged)
                decoded_pixels += im.width * im.height
                if decoded_pixels > lim.max_decode_pixels:
                    raise _too_much_work(shown, im.width, im.height, lim.max_decode_pixels)
                if time.monotonic() > deadline:
                    raise fail(f"The animation {shown} took too long to decode; use a shorter or smaller one.")
                try:
                    im.load()
                    frame = to_rgb(im)
                except Exception:
                    raise fail(damaged) from None
            if frame.size != (width, height):  # Pillow grew the canvas for a later, larger frame
                if frame.width > width or frame.height > height:
                    raise fail(damaged)
                canvas = Image.new("RGB", (width, height), (255, 255, 255))
                canvas.paste(frame, (0, 0))
                frame = canvas
            target = into(index)
            target[...] = np.asarray(frame)
            paused = time.monotonic()
            yield index, target
            deadline += time.monotonic() - paused


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


def video_length(path: PathLike) -> tuple[int | None, float]:
    """(frames, fps) a clip's header implies, nothing decoded: ffmpeg's probe (duration x frame rate) or a GIF's
    block scan. frames is None, and fps 0, where the header does not say or cannot be read (the decoder then
    says why)."""
    fh, real, _size, shown = open_bounded(path, "video", MAX_VIDEO_BYTES)
    with fh:
        head = fh.read(64)
        demuxer = _video_demuxer(head)
        data = head + fh.read(MAX_VIDEO_BYTES) if demuxer == "gif" else b""
    if demuxer == "gif":
        try:
            count, total_ms, _, _ = _gif_scan(data, MAX_VIDEO_FRAMES)
        except ValueError:
            return None, 0.0
        return (count, count / (total_ms / 1000.0)) if count else (None, 0.0)
    if demuxer is None:
        return None, 0.0
    try:
        clip = _probe_clip(real, demuxer, shown, "")
    except InputError:
        return None, 0.0
    return clip.frames, clip.fps


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

    @property
    def frames(self) -> int | None:
        """The frame count the header implies (None when it does not say)."""
        return int(math.ceil(self.duration * self.fps - 1e-6)) if self.duration and self.fps else None


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


def _check_clip(clip: _Clip, shown: str, lim: _Limits) -> int | None:
    """Refuse, from the probe alone, a clip whose sides, length, frame count or decoding work are over their
    limits; returns the frame count the header implies (None when it does not say)."""
    width, height, duration = clip.width, clip.height, clip.duration
    if max(width, height) > lim.max_side or min(width, height) < lim.min_side:
        raise fail(f"The video {shown} is {width}x{height} pixels; each side must be from {lim.min_side} to "
                   f"{lim.max_side} pixels.")
    if duration > lim.max_seconds:
        raise fail(f"The video {shown} is {duration:.1f} s long; at most {human_number(lim.max_seconds)} s is "
                   "allowed.")
    expected = clip.frames
    if expected and expected > lim.max_frames:
        raise fail(
            f"The video {shown} has about {expected} frames; at most {lim.max_frames} are allowed, "
            "so trim it or lower its frame rate."
        )
    if expected and expected * width * height > lim.max_decode_pixels:
        raise _too_much_work(shown, width, height, lim.max_decode_pixels)
    return expected


def _ffmpeg_frames(real: str, demuxer: str, clip: _Clip, shown: str, damaged: str, lim: _Limits, cap: int,
                   into: Callable[[int], np.ndarray], deadline: float) -> Iterator[tuple[int, np.ndarray]]:
    """Run ffmpeg on the clip and yield its frames, (index, into(index) holding it): raw RGB of the probed size
    from a pipe, read under the deadline (time spent by the consumer between frames moves it on) and a 5 s stall
    guard, at most `cap` frames (ffmpeg is told to stop after cap + 1), turned upright, cut off once longer than
    max_seconds at the probed rate; ffmpeg is killed when the generator ends, raises or is closed.

    ffmpeg is given the demuxer (no format guessing), only the file protocol, no autorotation (we rotate by the
    probed display matrix, in multiples of 90 degrees), and the time and frame caps."""
    width, height, turns = clip.width, clip.height, clip.turns
    cmd = [
        _ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "quiet", "-protocol_whitelist", "file",
        "-noautorotate", "-f", demuxer, "-t", f"{lim.max_seconds + 1:g}", "-i", real,
        "-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v", str(cap + 1),
        "-vf", f"scale={width}:{height}", "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            bufsize=0)
    raw = np.empty((height, width, 3), np.uint8) if turns else None
    try:
        index = 0
        while True:
            target = raw if turns else into(index)
            try:
                if not _read_frame(proc.stdout, target, deadline, stall_s=5.0):
                    break
            except TimeoutError:
                raise fail(f"The video {shown} took too long to decode; use a shorter or smaller clip.") from None
            if index >= lim.max_frames:
                raise fail(f"The video {shown} has more than {lim.max_frames} frames; at most {lim.max_frames} are "
                           "allowed.")
            if index >= cap:
                raise _too_much_work(shown, width, height, lim.max_decode_pixels)
            if clip.fps and index + 1 > (lim.max_seconds + 0.5) * clip.fps:  # the header under-reported its length
                raise _too_long(shown, lim)
            if turns:
                target = into(index)
                target[...] = np.rot90(raw, turns)
            paused = time.monotonic()
            yield index, target
            deadline += time.monotonic() - paused
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


def _too_long(shown: str, lim: _Limits) -> InputError:
    limit = human_number(lim.max_seconds)
    return fail(f"The video {shown} is longer than {limit} s; at most {limit} s is allowed.")


class _Reader:
    """A clip opened (regular file, size bounded, demuxer by magic number), probed and checked against the limits
    (sides, length, frame count, decoding work) before any frame is decoded. `frames` decodes it: every call a
    fresh pass (a new ffmpeg process, or a new Pillow reader) under the same caps and its own deadline.

    shape: (H, W) of the frames, upright; expected: the frames the header says (None: it does not say; a GIF's
    scan counts them); fps: the header's frame rate (0: not said); cap: the most frames a pass decodes."""

    def __init__(self, path: PathLike, lim: _Limits):
        if not isinstance(path, (str, os.PathLike)):
            raise fail(f"The video must be given as a file path, not {type(path).__name__}; save the upload first.")
        fh, self.real, _size, self.shown = open_bounded(path, "video", lim.max_bytes)
        with fh:
            head = fh.read(64)
            self.demuxer = _video_demuxer(head)
            if self.demuxer is None:
                raise fail(f"The file {self.shown} is not a video in an allowed format; use {_VIDEO_KINDS}.")
            self.data = head + fh.read(lim.max_bytes) if self.demuxer == "gif" else b""
        self.lim = lim
        if self.demuxer == "gif":
            self.damaged = (f"The animation {self.shown} is damaged and could not be decoded; re-export it as GIF "
                            "or MP4.")
            self.expected, self.fps, width, height = _gif_header(self.data, self.shown, self.damaged, lim)
            self.clip = None
            self.shape = (height, width)
        else:
            self.damaged = (f"The video {self.shown} is damaged or uses an unsupported codec; re-encode it as MP4 "
                            "(H.264).")
            self.clip = _probe_clip(self.real, self.demuxer, self.shown, self.damaged)
            self.expected = _check_clip(self.clip, self.shown, lim)
            self.fps, width, height = self.clip.fps, self.clip.width, self.clip.height
            self.shape = (width, height) if self.clip.turns % 2 else (height, width)
        self.cap = min(lim.max_frames, lim.max_decode_pixels // (width * height))

    @property
    def frame_bytes(self) -> int:
        return self.shape[0] * self.shape[1] * 3

    def check_kept(self, keep: int | None, sampled: bool) -> None:
        """Refuse keeping `keep` frames (None: not known yet) when they are over max_kept_bytes, saying how many
        fit (and, for the whole clip, how many seconds)."""
        budget = self.lim.max_kept_bytes
        if not keep or keep * self.frame_bytes <= budget:
            return
        fits = max(1, budget // self.frame_bytes)
        seconds = f" ({fits / self.fps:.1f} s at its {self.fps:g} fps)" if self.fps else ""
        lower = (f"keep at most {fits} frames or use a smaller video" if sampled
                 else f"use a clip of at most {fits} frames{seconds} or a smaller video")
        raise fail(f"Keeping {keep} frames of {self.shape[1]}x{self.shape[0]} needs "
                   f"{human_size(keep * self.frame_bytes)}; at most {human_size(budget)} is allowed, so {lower}.")

    def frames(self, into: Callable[[int], np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        """One pass: (index, into(index) holding frame `index`), in order."""
        deadline = time.monotonic() + self.lim.max_decode_seconds
        if self.clip is None:
            return _gif_frames(self.data, self.shown, self.damaged, self.lim, self.expected,
                               (self.shape[1], self.shape[0]), into, deadline)
        return _ffmpeg_frames(self.real, self.demuxer, self.clip, self.shown, self.damaged, self.lim, self.cap,
                              into, deadline)

    def rate(self, decoded: int) -> float:
        """The clip's frame rate once a pass decoded `decoded` frames (refused when there were none, or when they
        last longer than max_seconds): the header's, else frames over the duration, else 30."""
        if decoded == 0:
            raise fail(f"The video {self.shown} has no frames that could be decoded; re-encode it as MP4 (H.264).")
        fps = self.fps
        if fps == 0.0:
            fps = decoded / self.clip.duration if self.clip.duration > 0 else 30.0
            log.warning("frame rate of %s unknown; using %.3g fps", self.shown, fps)
        if decoded / fps > self.lim.max_seconds + 0.5:
            raise _too_long(self.shown, self.lim)
        return float(fps)

    def count(self) -> int:
        """The frames a pass decodes, none kept (one scratch frame)."""
        scratch = np.empty((*self.shape, 3), np.uint8)
        decoded = 0
        with contextlib.closing(self.frames(lambda index: scratch)) as frames:
            for index, _ in frames:
                decoded = index + 1
        return decoded


def video(path: PathLike, *, sample: int | None = None, **limits) -> tuple[np.ndarray, float]:
    """A short clip as frames (T, H, W, 3) uint8 and its frame rate in frames per second.

    MP4/MOV (demuxed as mov) and WEBM/MKV (matroska) through imageio-ffmpeg's ffmpeg, GIF through Pillow. The
    container's duration, frame rate and frame size are probed before any frame is decoded; ffmpeg is told to
    stop after max_seconds + 1 s and the frame caps, and is killed at the deadline, so a container that lies is
    still bounded. Rotation metadata (multiples of 90 degrees) is applied, as players do.
    sample: keep this many frames spread evenly over the clip (`spread_frames`; fps is scaled so the duration stays
    the same); None keeps every frame, which must be at most max_frames and fit in max_kept_bytes.
    limits (keywords, the module's defaults): max_seconds, max_frames, max_side, min_side, max_bytes,
    max_kept_bytes, max_decode_pixels (the decoding work of a pass, frames decoded x width x height, whichever
    frames are kept) and max_decode_seconds (a last-resort wall-clock stop on a pass).
    """
    lim = _Limits(**limits)
    want = None if sample is None else int(number("number of frames", sample, lo=1, hi=lim.max_frames, integer=True))
    reader = _Reader(path, lim)
    keep = want if want is not None else reader.expected
    reader.check_kept(min(keep, reader.expected or keep) if keep else None, want is not None)
    frame_bytes, cap, budget = reader.frame_bytes, reader.cap, lim.max_kept_bytes

    def full() -> None:
        if cap * frame_bytes > budget:
            raise fail(f"The video {reader.shown} needs more than {human_size(budget)} once decoded; use at most "
                       f"{max(1, budget // frame_bytes)} frames or a smaller video.")
        if cap == lim.max_frames:
            raise fail(f"The video {reader.shown} has more than {lim.max_frames} frames; at most {lim.max_frames} "
                       "are allowed.")
        raise _too_much_work(reader.shown, reader.shape[1], reader.shape[0], lim.max_decode_pixels)

    store = _Frames(reader.shape, want, reader.expected, min(cap, budget // frame_bytes), full)
    with contextlib.closing(reader.frames(store.slot)) as frames:
        for index, _ in frames:
            store.commit(index)
    fps = reader.rate(store.seen)
    frames = store.result()
    return frames, float(fps * len(frames) / store.seen)


@dataclass(frozen=True)
class Keyframes:
    """Some frames of a clip (`video_keyframes`). frames: (K, H, W, 3) uint8; indices: (K,) their frame numbers,
    ascending (`spread_frames(count, want)`); count: the frames the clip decodes to; fps: its frame rate."""

    frames: np.ndarray
    indices: np.ndarray
    count: int
    fps: float


def video_keyframes(path: PathLike, want: int, **limits) -> Keyframes:
    """`want` frames of a clip spread evenly over it, first and last included (`spread_frames`), and what the clip
    is (its frame count and rate), holding only those frames: `video`'s checks and limits (keywords), each pass
    bounded alike. The picks are planned from the header's frame count; when the header does not say it, a
    first pass counts the frames (keeping none), and when the pass decodes another count than the header's, the
    keyframes are read again at the count decoded, so the picks are always those of the true count."""
    lim = _Limits(**limits)
    want = int(number("number of keyframes", want, lo=1, hi=lim.max_frames, integer=True))
    reader = _Reader(path, lim)
    count = reader.expected
    reader.check_kept(min(want, count or want), True)
    for _ in range(2):
        if count is None:
            count = reader.count()
            reader.rate(count)  # none decoded, or too long: refused before the keyframes' pass
        picks = spread_frames(count, want)
        store = _Frames(reader.shape, want, count, len(picks), None)
        with contextlib.closing(reader.frames(store.slot)) as frames:
            for index, _ in frames:
                store.commit(index)
        fps = reader.rate(store.seen)
        if store.seen == count:
            return Keyframes(store.result(), picks, count, fps)
        count = store.seen
    raise fail(f"The video {reader.shown} decoded to a different number of frames each time it was read; "
               "re-encode it as MP4 (H.264).")


def video_frames(path: PathLike, **limits) -> Iterator[np.ndarray]:
    """Every frame of a clip, (H, W, 3) uint8, one at a time in order, none kept here: `video`'s checks and
    limits (keywords), which refuse the clip now, before the first frame; the pass is bounded as `video`'s is
    (frame caps, decoding work, a deadline on the time spent decoding, a stall guard), and a clip that decodes
    to more frames, or longer, than allowed is cut off mid-stream with the same sentence. Closing the iterator
    ends the decoder."""
    reader = _Reader(path, _Limits(**limits))

    def stream() -> Iterator[np.ndarray]:
        decoded = 0
        with contextlib.closing(reader.frames(lambda index: np.empty((*reader.shape, 3), np.uint8))) as frames:
            for index, frame in frames:
                decoded = index + 1
                yield frame
        reader.rate(decoded)

    return stream()
