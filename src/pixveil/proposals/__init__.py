"""The face-proposal network: a tiny CNN that says where CenterFace will fire.

:mod:`pixveil.proposals.data` makes the training samples (no torch needed) and
:mod:`pixveil.proposals.train` trains and exports the network (needs torch:
``pip install 'pixveil[gan]'``).  The runtime is
:mod:`pixveil.detect.face_proposals`; the cascade of
:class:`pixveil.detect.faces.FaceDetector` uses it.
"""
