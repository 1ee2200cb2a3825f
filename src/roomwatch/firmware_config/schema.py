"""The room agent's configuration: one strict tree, every field described.

Unknown keys are errors, so a misspelt key never silently falls back to a
default. ``roomwatch validate-config FILE`` checks a file against this schema.
A file may be empty: every field has a default that runs on a laptop with
``--mock``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from roomwatch.core.policy import StudentBand, available_profiles
from roomwatch.core.policy.model import Range
from roomwatch.core.wire import ID_PATTERN
from roomwatch.firmware_config.mqtt import MqttSettings
from roomwatch.firmware_config.pins import bcm_of


#: A BCM GPIO number (0-27 on a 40-pin Pi) or a gpiozero pin name such as "GPIO17" or "BOARD11".
def _check_pin(value: int | str) -> int | str:
    bcm_of(value)  # what gpiozero accepts when the agent starts (firmware_config/pins.py)
    return value


Pin = Annotated[
    int | str,
    Field(description="BCM number (e.g. 17) or a gpiozero pin name (e.g. 'GPIO17', 'BOARD11')."),
    AfterValidator(_check_pin),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpioInput(Strict):
    """A contact, switch or sensor read as one GPIO input."""

    pin: Pin
    pull_up: bool | None = Field(
        True,
        description="true: internal pull-up, contact to ground (active low); false: pull-down; "
        "null: external resistor, then active_high is required.",
    )
    active_high: bool | None = Field(
        None, description="Only with pull_up: null, the level that means active."
    )
    bounce_s: float | None = Field(
        0.02, ge=0, le=1, description="Debounce for mechanical contacts; null for none."
    )

    @model_validator(mode="after")
    def _active_level(self) -> GpioInput:
        if self.pull_up is None and self.active_high is None:
            raise ValueError("with pull_up: null, say active_high: true or false")
        if self.pull_up is not None and self.active_high is not None:
            raise ValueError("active_high is only for pull_up: null (the pull sets the level)")
        return self


class GpioOutput(Strict):
    pin: Pin
    active_high: bool = Field(True, description="true when the output drives high to act.")


class ContactSensor(GpioInput):
    kind: Literal["contact"] = Field(
        description="A dry contact: lock bolt/bond sensor, reed switch."
    )


class PirSensor(GpioInput):
    kind: Literal["pir"] = Field(
        description="Passive-infrared motion sensor (gpiozero MotionSensor)."
    )
    pull_up: bool | None = Field(False, description="Most PIR modules drive the line: pull-down.")


class ButtonInput(GpioInput):
    kind: Literal["button"] = Field(description="A push button.")


class MatSensor(GpioInput):
    kind: Literal["mat"] = Field(description="A pressure mat at the observation point.")


class Ld2410Sensor(Strict):
    kind: Literal["ld2410"] = Field(description="HLK-LD2410 mmWave presence over UART.")
    port: str = Field("/dev/serial0", description="Serial device.")
    baudrate: int = Field(256000, description="The module's default is 256000.")


class Ds18b20Sensor(Strict):
    kind: Literal["ds18b20"] = Field(description="DS18B20 temperature over 1-wire (sysfs).")
    device_id: str | None = Field(
        None, pattern=r"^28-[0-9a-f]{12}$", description="e.g. 28-0316a2795bff; null = the only one."
    )


class I2cSensor(Strict):
    bus: int = Field(1, ge=0, le=20, description="I2C bus number (1 on a Pi).")


class Bme280Sensor(I2cSensor):
    kind: Literal["bme280"] = Field(description="Bosch BME280 temperature/humidity over I2C.")
    address: int = Field(0x76, description="0x76 or 0x77.")


class Bh1750Sensor(I2cSensor):
    kind: Literal["bh1750"] = Field(description="BH1750 ambient light over I2C.")
    address: int = Field(0x23, description="0x23 or 0x5C.")


class LdrSensor(Strict):
    kind: Literal["ldr"] = Field(
        description="Light-dependent resistor and capacitor (gpiozero LightSensor)."
    )
    pin: Pin
    lux_per_unit: float = Field(1000, gt=0, description="Calibration: lux at a reading of 1.0.")


class Scd4xSensor(I2cSensor):
    kind: Literal["scd4x"] = Field(description="Sensirion SCD40/41 CO2 over I2C.")
    address: int = Field(0x62, description="Fixed at 0x62.")


#: A point of a privacy-mask polygon: (x, y) as fractions of the frame's width and height.
MaskPoint = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


class CameraSensor(Strict):
    """Occupancy from a camera, analysed on the device; no image ever leaves it (docs/camera.md).

    One model rather than a union per kind, so that an error names its key and line."""

    kind: Literal["picamera2", "v4l2", "file"] = Field(
        description="picamera2: the Pi camera; v4l2: a USB or other V4L2 camera through "
        "OpenCV; file: a recorded video, looped (testing only)."
    )
    device: int | str | None = Field(
        None, description="v4l2 only: device path (/dev/video0, the default) or index (0)."
    )
    path: Path | None = Field(None, description="file only: the video file.")

    fps: float = Field(2, ge=0.2, le=10, description="Frames analysed per second.")
    width: int = Field(320, ge=160, le=1280, description="Analysis width in pixels (x10).")
    height: int = Field(240, ge=120, le=960, description="Analysis height in pixels (x10).")
    privacy_mask: list[list[MaskPoint]] = Field(
        default_factory=list,
        description="Polygons blanked before anything looks at the frame (the doorway, a "
        "window to the corridor): lists of [x, y] points, fractions of width and height.",
    )
    reference_file: Path | None = Field(
        None,
        description="The empty room's statistics written by `roomwatch agent "
        "--calibrate-camera`; null = camera-reference.json in state_dir.",
    )
    people_detector: bool = Field(
        True, description="Also run OpenCV's built-in HOG people detector."
    )
    absent_after_s: float = Field(
        5, ge=1, le=600, description="Presence is given up after this long without any sign."
    )
    obscured_after_s: float = Field(
        2,
        ge=0.5,
        le=5,
        description="A covered, dark, frozen or failed camera is unknown (a sensor fault) "
        "after this long.",
    )

    @field_validator("width", "height")
    @classmethod
    def _whole_cells(cls, value: int) -> int:
        if value % 10:
            raise ValueError("must be a multiple of 10 (the analysis works in 10-pixel cells)")
        return value

    @field_validator("privacy_mask")
    @classmethod
    def _polygons(cls, value: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        for number, polygon in enumerate(value, 1):
            if len(polygon) < 3:
                raise ValueError(f"polygon {number} needs at least 3 points, has {len(polygon)}")
            area = sum(
                x0 * y1 - x1 * y0
                for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True)
            )
            if abs(area) < 1e-6:
                raise ValueError(f"polygon {number} encloses no area")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, bool) or (isinstance(value, int) and not 0 <= value <= 63):
            raise ValueError("a V4L2 device index is 0 to 63")
        if isinstance(value, str) and not value.startswith("/dev/"):
            raise ValueError("a V4L2 device is a path under /dev/ (e.g. /dev/video0) or an index")
        return value

    @model_validator(mode="after")
    def _source_fields(self) -> CameraSensor:
        if self.device is not None and self.kind != "v4l2":
            raise ValueError(f"device is only for kind: v4l2, not {self.kind}")
        if self.kind == "file" and self.path is None:
            raise ValueError("kind: file needs path: the video file")
        if self.path is not None and self.kind != "file":
            raise ValueError(f"path is only for kind: file, not {self.kind}")
        return self


StaffSensor = Annotated[PirSensor | MatSensor | ButtonInput, Field(discriminator="kind")]
TemperatureSensor = Annotated[Ds18b20Sensor | Bme280Sensor, Field(discriminator="kind")]
LightSensorConfig = Annotated[Bh1750Sensor | LdrSensor, Field(discriminator="kind")]


class Sensors(Strict):
    """Each sensor's kind and wiring; omit (or null) what is not fitted."""

    door_lock: ContactSensor | None = Field(
        None, description="Lock status: active = bolt thrown / magnet bonded (locked)."
    )
    door_closed: ContactSensor | None = Field(
        None, description="Reed switch: active = door closed."
    )
    motion: PirSensor | None = Field(None, description="Occupancy PIR inside the room.")
    presence: Ld2410Sensor | None = Field(None, description="mmWave presence (sees a still child).")
    staff: StaffSensor | None = Field(None, description="Staff presence at the observation point.")
    staff_button: ButtonInput | None = Field(None, description="Start/end an episode at the door.")
    temperature: TemperatureSensor | None = None
    light: LightSensorConfig | None = None
    co2: Scd4xSensor | None = None
    camera: CameraSensor | None = Field(
        None, description="Camera occupancy (sees a still child); frames never leave the device."
    )


class Outputs(Strict):
    lock_permit: GpioOutput | None = Field(
        None,
        description="Active while the agent lets an electrified lock hold; inactive (at once) "
        "when the room may be occupied. Use a pin pulled down at power-on (GPIO 9-27).",
    )
    watchdog_feed: GpioOutput | None = Field(
        None,
        description="Toggled on every tick while the permit is granted: the heartbeat of the "
        "permit relay's hardware watchdog, so a hung agent drops the lock.",
    )
    sounder: GpioOutput | None = Field(None, description="Local alarm sounder.")
    led: GpioOutput | None = Field(None, description="Status LED at the door.")


class Timing(Strict):
    sample_interval_s: float = Field(1, ge=0.1, le=60, description="How often sensors are read.")
    telemetry_interval_s: float = Field(
        10, ge=1, le=600, description="Telemetry cadence (and on every change)."
    )
    occupancy_hold_s: float = Field(
        30, ge=1, le=3600, description="A room stays occupied this long after the last motion."
    )
    empty_debounce_s: float = Field(
        60, ge=1, le=3600, description="An episode ends after the room has been empty this long."
    )
    ack_stall_s: float = Field(
        15,
        ge=1,
        le=600,
        description="With messages outstanding and no acknowledgement for this long, the "
        "outbox is sent again (then after twice as long, up to 10 minutes).",
    )


class Thresholds(Strict):
    """Per-room overrides of the profile's environment and timing (null = the profile's)."""

    temperature_c: Range | None = None
    lux_min: float | None = Field(None, ge=0)
    co2_max_ppm: float | None = Field(None, gt=0)
    monitoring_lapse_s: float | None = Field(None, gt=0, le=600)
    time_limit_min: float | None = Field(None, gt=0, le=24 * 60)


class AgentConfig(Strict):
    """One room agent."""

    site: str = Field("demo", pattern=ID_PATTERN, description="Site id (school).")
    room: str = Field("room-1", pattern=ID_PATTERN, description="Room id, unique within the site.")
    profile: str = Field("default", description="Policy profile id (`roomwatch policies list`).")
    student_band: StudentBand | None = Field(
        None, description="elementary or secondary, where the profile's limits differ by band."
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    sensors: Sensors = Field(default_factory=Sensors)
    outputs: Outputs = Field(default_factory=Outputs)
    timing: Timing = Field(default_factory=Timing)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    state_dir: Path = Field(
        Path("/var/lib/roomwatch"), description="Where the agent keeps its outbox (agent.db)."
    )
    outbox_capacity: int = Field(
        100_000,
        ge=100,
        le=10_000_000,
        description="Most messages kept for the collector; when full, the oldest telemetry "
        "goes first (episodes and events are never dropped).",
    )

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        known = available_profiles()
        if value not in known:
            raise ValueError(f"unknown policy profile {value!r}; known: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _pins_unique(self) -> AgentConfig:
        used: dict[int, str] = {}
        for group in (self.sensors, self.outputs):
            for name in type(group).model_fields:
                device = getattr(group, name)
                pin = getattr(device, "pin", None)
                if pin is None:
                    continue
                key = bcm_of(pin)  # 17, "GPIO17" and "BOARD11" are one pin
                if key in used:
                    raise ValueError(f"pin {pin} is used by both {used[key]} and {name}")
                used[key] = name
        return self

    def digest(self) -> str:
        """A short, stable fingerprint of the effective configuration (reported in status)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
