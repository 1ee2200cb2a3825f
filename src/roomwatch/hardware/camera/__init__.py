"""Camera occupancy, analysed on the device: frames never leave this package (docs/camera.md).

Importing this package imports no OpenCV: :mod:`.reading` is all the agent needs
to know, and :func:`roomwatch.hardware.camera.build.build_camera` imports OpenCV
only when a camera is configured (and says so plainly when it is missing).
"""

from roomwatch.hardware.camera.reading import (
    CameraInput,
    CameraReading,
    Sighting,
    UnavailableCamera,
)

__all__ = ["CameraInput", "CameraReading", "Sighting", "UnavailableCamera"]
