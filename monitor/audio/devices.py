"""Input devices through PortAudio (sounddevice): listing, hints, and finding one by name or index."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ..errors import BadInput

# Words in a device name that suggest what it carries, first match wins. A "monitor" captures
# what a sink plays: the softphone's output, i.e. the customer's voice.
_AGENT = "agent mic"
_CUSTOMER = "customer line (or a monitor of the softphone's output)"
_HINTS = (
    ("agent", _AGENT), ("customer", _CUSTOMER), ("monitor", _CUSTOMER), ("loopback", _CUSTOMER),
    ("headset", _AGENT), ("mic", _AGENT), ("usb", _AGENT), ("line", _CUSTOMER), ("softphone", _CUSTOMER),
    ("voip", _CUSTOMER),
)


@dataclass(frozen=True)
class InputDevice:
    """One capture device as PortAudio sees it."""

    index: int
    name: str
    channels: int
    default_rate: float
    hostapi: str
    is_default: bool = False

    @property
    def hint(self) -> str:
        """Which side of the call this device could carry, from its name."""
        name = self.name.lower()
        for word, hint in _HINTS:
            if word in name:
                return hint
        if name in ("default", "pulse", "sysdefault"):
            return "the sound server's default input"
        return ""


def portaudio() -> ModuleType:
    """The sounddevice module; a missing PortAudio library is bad input with the fix."""
    try:
        import sounddevice
    except OSError as exc:
        raise BadInput(
            f"the PortAudio library is missing ({exc}); install it with scripts/setup or apt-get install libportaudio2"
        ) from None
    return sounddevice


def input_devices(sd: ModuleType | None = None) -> list[InputDevice]:
    """Every device with at least one input channel."""
    sd = sd or portaudio()
    try:
        devices = sd.query_devices()
        apis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise BadInput(f"PortAudio cannot list devices ({exc}); is the sound server running?") from None
    return [
        InputDevice(i, d["name"], d["max_input_channels"], d["default_samplerate"], apis[d["hostapi"]]["name"], i == default_in)
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]


def find_input(query: str | int | None, sd: ModuleType | None = None) -> InputDevice:
    """The input device an index, an exact name or a unique name substring names; None: the default input."""
    devices = input_devices(sd)
    if not devices:
        raise BadInput(
            "no audio input device found; plug in a headset, or run scripts/virtual-audio --start for virtual call lines"
        )
    if query is None or query == "":
        default = [d for d in devices if d.is_default]
        return default[0] if default else devices[0]
    text = str(query).strip()
    if text.isdigit():
        match = [d for d in devices if d.index == int(text)]
        if not match:
            raise BadInput(f"no input device has index {text}; run `callmon devices` to list them")
        return match[0]
    exact = [d for d in devices if d.name.lower() == text.lower()]
    if exact:
        return exact[0]
    partial = [d for d in devices if text.lower() in d.name.lower()]
    if not partial:
        raise BadInput(f"no input device matches {text!r}; run `callmon devices` to list them")
    if len(partial) > 1:
        names = ", ".join(f"{d.index} {d.name!r}" for d in partial)
        raise BadInput(f"{text!r} matches several input devices ({names}); give more of the name or the index")
    return partial[0]
