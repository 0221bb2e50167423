"""A learned licence-plate detector: synthetic training data, model, training and export.

* :mod:`pixveil.platedet.synth` draws plates of many formats and composites them on
  scenes (NumPy, OpenCV and Pillow only), returning each plate's quadrilateral.
* :mod:`pixveil.platedet.data` reads the annotated plate photos and splits them.
* :mod:`pixveil.platedet.targets` builds the training targets (heatmap, sizes,
  corners) and :mod:`pixveil.platedet.decode` turns the network's maps back into
  plate quadrilaterals (NumPy only; shared by training and the ONNX runtime detector).
* :mod:`pixveil.platedet.evaluate` scores detections against annotated plates.
* :mod:`pixveil.platedet.model` and :mod:`pixveil.platedet.train` need torch (the
  ``[gan]`` extra) and are imported only when training or exporting.

The shipped detector is :mod:`pixveil.detect.plate_net` (ONNX Runtime, no torch);
its model card is ``docs/PLATE_DETECTOR.md``.
"""

from __future__ import annotations
