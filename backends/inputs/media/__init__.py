"""Media decoding, bounded: images, view sets (several images or one zip) and videos, as the backends take them.

One module a kind: `image_files` (one image), `view_sets` (several images, or a zip of them), `video_files`
(a clip's frames: all kept, its keyframes only, or every frame streamed one at a time; its header's frame size,
its sound put back), and `shared` (what they share: Pillow's pixel
guard, the conversion to RGB, the bounded read of a file's header). Every name is imported from here:
`from backends.inputs import media; media.image(path)`.

Every check is bounded *before* the expensive part: file sizes from `stat`, image sizes from the header (Pillow's
decompression-bomb guard set to the caller's limit while we decode), zip sizes and member counts from the central
directory, video length and resolution from an ffmpeg probe (or a GIF block scan) before frames are decoded, and
ffmpeg itself is told to stop after the frame and time limits and killed at a deadline (each pass over a clip alike:
`video_frames` streams it under the same checks). So hostile input is refused in well under 2 s, and no check holds
more than the frames it returns plus ~250 MB (one 4096x4096 RGBA image being flattened). Files are opened through `backends.inputs.validate`'s readers (regular files only, one size rule:
`validate.open_bounded`).

Default limits (each one a keyword argument):
    images: 30 MB file, 4096x4096 pixels, sides >= 8 px, PNG/JPEG/WEBP/BMP/GIF (first frame of animations)
    view sets: 32 images, 32 Mpx in total; zip: 100 MB, 256 entries, 256 MB uncompressed, stored/deflate only
    videos: 200 MB file, 20 s, 300 decoded frames (10 s at 30 fps), sides <= 4096 px, 640 Mpx decoded a pass
        (all 300 frames of 1080p; 80 frames of 4K UHD), 256 MB of kept frames (a streamed frame is not kept: the
        video tab holds its keyframes, not the clip), MP4/MOV/WEBM/MKV/GIF
"""
from .image_files import IMAGE_FORMATS, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_JPEG_SCANS, ImageSource, image, jpeg_scans
from .shared import HEADER_BYTES, MIN_SIDE, header_size, pillow_pixel_limit, read_head
from .video_files import (MAX_VIDEO_BYTES, MAX_VIDEO_DECODE_PIXELS, MAX_VIDEO_DECODE_SECONDS, MAX_VIDEO_FRAMES,
                          MAX_VIDEO_KEPT_BYTES, MAX_VIDEO_SECONDS, MAX_VIDEO_SIDE, Keyframes, add_audio, spread_frames,
                          video, video_frame_size, video_frames, video_keyframes, video_length)
from .view_sets import (MAX_VIEWS, MAX_VIEWS_PIXELS, MAX_ZIP_BYTES, MAX_ZIP_ENTRIES, MAX_ZIP_UNCOMPRESSED,
                        central_directory, images, is_archiver_junk)

__all__ = [
    "image", "images", "video", "video_keyframes", "video_frames", "Keyframes", "spread_frames", "video_length",
    "video_frame_size", "add_audio", "jpeg_scans", "is_archiver_junk",
    "central_directory", "pillow_pixel_limit", "read_head", "header_size", "ImageSource",
    "IMAGE_FORMATS", "HEADER_BYTES", "MIN_SIDE", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "MAX_JPEG_SCANS",
    "MAX_VIEWS", "MAX_VIEWS_PIXELS", "MAX_ZIP_BYTES", "MAX_ZIP_ENTRIES", "MAX_ZIP_UNCOMPRESSED",
    "MAX_VIDEO_BYTES", "MAX_VIDEO_SECONDS", "MAX_VIDEO_FRAMES", "MAX_VIDEO_SIDE", "MAX_VIDEO_KEPT_BYTES",
    "MAX_VIDEO_DECODE_PIXELS", "MAX_VIDEO_DECODE_SECONDS",
]
