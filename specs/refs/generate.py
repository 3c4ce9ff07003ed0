"""Regenerates the example storyboard's reference assets (all drawn here, no third-party media).

Run from the repository root: `.venv/bin/python specs/refs/generate.py`. The outputs are committed,
so this only needs to run when the pictures should change (which changes their shots' keys).
"""

from __future__ import annotations

import math
import struct
import wave
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw

HERE = Path(__file__).parent


def mia() -> None:
    image = Image.new("RGB", (480, 640), (232, 222, 210))
    draw = ImageDraw.Draw(image)
    draw.ellipse((170, 90, 310, 250), fill=(224, 182, 150))  # face
    draw.pieslice((150, 60, 330, 260), 180, 360, fill=(70, 40, 30))  # hair
    draw.ellipse((205, 150, 225, 165), fill=(40, 40, 60))
    draw.ellipse((255, 150, 275, 165), fill=(40, 40, 60))
    draw.arc((215, 185, 265, 215), 20, 160, fill=(150, 60, 60), width=4)
    draw.rectangle((215, 250, 265, 280), fill=(224, 182, 150))  # neck
    draw.polygon([(140, 640), (180, 300), (300, 300), (340, 640)], fill=(60, 90, 140))  # shoulders
    image.save(HERE / "mia.png", optimize=True)


def dress() -> None:
    image = Image.new("RGB", (512, 512), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    draw.polygon([(216, 60), (296, 60), (320, 200), (420, 470), (92, 470), (192, 200)], fill=(170, 30, 60))
    draw.rectangle((228, 40, 284, 70), fill=(150, 25, 50))
    for y in range(240, 460, 30):
        draw.line((150 + (460 - y) // 4, y, 362 - (460 - y) // 4, y), fill=(200, 170, 90), width=3)
    image.save(HERE / "dress.png", optimize=True)


def garden() -> None:
    image = Image.new("RGB", (960, 540))
    draw = ImageDraw.Draw(image)
    for y in range(540):
        t = y / 540
        draw.line((0, y, 960, y), fill=(int(250 - 120 * t), int(180 + 40 * t), int(120 - 60 * t)))
    draw.rectangle((0, 360, 960, 540), fill=(60, 120, 50))
    for x in range(40, 960, 120):
        draw.ellipse((x - 40, 250, x + 40, 370), fill=(40, 100, 40))
        draw.rectangle((x - 6, 360, x + 6, 420), fill=(90, 60, 30))
    draw.ellipse((700, 60, 820, 180), fill=(255, 210, 120))
    image.save(HERE / "garden.jpg", quality=85, optimize=True)


def start_frame() -> None:
    image = Image.new("RGB", (1280, 720), (30, 30, 40))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 480, 1280, 720), fill=(70, 60, 50))
    draw.ellipse((560, 140, 720, 320), fill=(224, 182, 150))
    draw.polygon([(520, 720), (570, 330), (710, 330), (760, 720)], fill=(60, 90, 140))
    image.save(HERE / "start.png", optimize=True)


def bottle_video() -> None:
    """A 2 s, 24 fps, 320x240 turntable of a perfume bottle."""
    path = HERE / "bottle.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"crf": "30", "preset": "veryslow"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for index in range(48):
            image = Image.new("RGB", (320, 240), (240, 236, 230))
            draw = ImageDraw.Draw(image)
            squeeze = abs(math.cos(index / 48 * math.pi)) * 30 + 20
            draw.rectangle((160 - squeeze, 80, 160 + squeeze, 200), fill=(90, 150, 200))
            draw.rectangle((145, 50, 175, 80), fill=(200, 170, 90))
            frame = av.VideoFrame.from_image(image)
            frame.pts = index
            frame.time_base = Fraction(1, 24)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def voice(name: str = "mia.wav", base: float = 180.0, seconds: int = 2) -> None:
    """A hummed phrase (a voice timbre stand-in): 16 kHz mono 16-bit PCM."""
    rate = 16000
    frames = bytearray()
    for n in range(rate * seconds):
        t = n / rate
        pitch = base + 30 * math.sin(2 * math.pi * 0.8 * t)
        envelope = min(1.0, t * 8, (seconds - t) * 8)
        sample = sum(math.sin(2 * math.pi * pitch * k * t) / k for k in (1, 2, 3))
        frames += struct.pack("<h", int(9000 * envelope * sample / 1.8))
    with wave.open(str(HERE / name), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))


if __name__ == "__main__":
    mia()
    dress()
    garden()
    start_frame()
    bottle_video()
    voice()
    voice("mia-line2.wav", base=210.0, seconds=3)  # her second line: a per-shot voice
