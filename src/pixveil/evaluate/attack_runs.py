"""The attack stage of an evaluation: each learned attack against each setting.

After the per-image pass, :func:`run_attacks` trains and tests the attacks of
:mod:`pixveil.evaluate.attacks` on the face crops that
:class:`~pixveil.evaluate.worker.Worker` cut from every setting's protected
images: the CNN re-identification attack on every setting (the baseline
included), the reconstruction attack on every protected setting.  Each
identity's last ~20 % of images are held out to test them
(:func:`attack_split`).  Both attacks run once per attacker context
(``config.contexts``: the face box grown by a factor, or the whole photo), on
the views :func:`pixveil.evaluate.worker.context_crops` cut.  The figures go
into each setting's
:attr:`~pixveil.evaluate.results.SettingResult.attacks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pixveil.errors import MissingDependencyError
from pixveil.evaluate.datasets import FaceDataset
from pixveil.evaluate.results import SettingResult
from pixveil.evaluate.spec import EvaluationConfig
from pixveil.evaluate.worker import CROP_SCALE, Original, present, resize_square
from pixveil.progress import ProgressCallback, ProgressEvent

__all__ = ["attack_split", "attacks_available", "run_attacks"]

#: Share of each identity's images held out to test the attacks.
_ATTACK_TEST_FRACTION = 0.2
#: Reconstructions kept per setting for the report.
_SHOWN_RECONSTRUCTIONS = 6


def attacks_available() -> dict[str, str | None]:
    """For each attack, None when it can run, else why it cannot."""
    out: dict[str, str | None] = {}
    for name, module in (
        ("cnn", "pixveil.evaluate.attacks.cnn_reid"),
        ("reconstruction", "pixveil.evaluate.attacks.reconstruction"),
    ):
        try:
            __import__(module)
            import torch  # noqa: F401
        except MissingDependencyError as exc:
            out[name] = str(exc)
        except ImportError as exc:
            out[name] = f"{module} cannot be imported ({exc})"
        else:
            out[name] = None
    return out


def attack_split(
    labels: Sequence[str | None], indices: Sequence[int]
) -> tuple[list[int], list[int]]:
    """Hold out the last ~20 % of each identity's images (at least one, keeping one).

    Identities with a single image are left out; in a flat folder (no labels)
    the last ~20 % of ``indices`` are held out.  Returns the training and test
    indices.
    """
    if all(labels[i] is None for i in indices):
        n_test = max(1, round(len(indices) * _ATTACK_TEST_FRACTION))
        if len(indices) < 2:
            return [], []
        return list(indices[:-n_test]), list(indices[-n_test:])
    groups: dict[str, list[int]] = {}
    for i in indices:
        label = labels[i]
        if label is not None:
            groups.setdefault(label, []).append(i)
    train: list[int] = []
    test: list[int] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        n_test = max(1, round(len(members) * _ATTACK_TEST_FRACTION))
        train.extend(members[:-n_test])
        test.extend(members[-n_test:])
    return train, test


def run_attacks(
    config: EvaluationConfig,
    dataset: FaceDataset,
    valid: Sequence[int],
    infos: Sequence[Original],
    crops: Mapping[str, Mapping[int, np.ndarray]],
    results: Sequence[SettingResult],
    notes: list[str],
    reconstructions: dict[str, tuple[np.ndarray, np.ndarray]],
    progress: ProgressCallback,
    *,
    views: Mapping[str, Mapping[str, Mapping[int, np.ndarray]]] | None = None,
) -> None:
    """Run ``config.attacks`` on the crops of every setting; fill in ``results``.

    Parameters
    ----------
    config, dataset
        The run's configuration and data set.
    valid : sequence of int
        Indices of the images that could be decoded.
    infos : sequence of Original
        What the first pass learnt about each image (its original face crop).
    crops : mapping of str to mapping of int to ndarray
        For each protected setting's label, the protected face crop of each image.
    results : sequence of SettingResult
        One per setting: the attack figures are stored in their ``attacks``.
    notes : list of str
        Why an attack was skipped is appended here.
    reconstructions : dict
        Filled with a few protected test crops and their reconstructions per
        setting label (the originals under ``"original"``).
    progress : callable taking a ProgressEvent
        Called as attack runs start, advance (once per epoch) and end: stage
        ``"attack"``, ``done`` attack runs of ``total``, the message naming the
        setting and the epoch, ``item`` the setting's label, ``metrics`` the
        attack's latest figures.
    views : mapping, optional
        For each setting's label (the baseline's included) and each of
        ``config.contexts``, the attacker's view of each image.  Both attacks
        run once per context: ``attacks["cnn"]`` and
        ``attacks["reconstruction"]`` hold the figures of the first context
        (its name under ``"context"``) and, under ``"contexts"``, those of
        every context.  The reconstruction attack maps the protected view to
        the original's view of the same context (``infos[i].context_crops``);
        its same-photo figures (with ``config.reid``) are computed in context
        ``"1.2"`` only, where the face's place in the crop is known, and the
        reconstructions shown in the report are those of the first context.
        Without ``views`` both attacks see the ``crops`` (context ``"1.2"``).
    """
    available = attacks_available()
    labels = dataset.labels
    train, test = attack_split(labels, valid)
    runs: list[tuple[str, SettingResult, str]] = []
    for attack in config.attacks:
        reason = available.get(attack)
        if reason is not None:
            notes.append(f"attack {attack!r} skipped: {reason}")
            continue
        if attack == "cnn" and not dataset.has_identities:
            notes.append("attack 'cnn' skipped: a flat folder has no identities to recognise")
            continue
        if not train or not test:
            notes.append(f"attack {attack!r} skipped: too few images to train and test")
            continue
        if attack == "cnn" and len({labels[i] for i in train}) < 2:
            notes.append("attack 'cnn' skipped: it needs at least two identities")
            continue
        for res in results:
            if attack == "reconstruction" and res.setting.is_baseline:
                continue  # nothing to undo
            if views is not None:
                runs.extend((attack, res, c) for c in config.contexts)
            else:
                runs.append((attack, res, "1.2"))
    if not runs:
        return
    originals = {i: present(infos[i].crop) for i in valid}
    train_labels = np.asarray([labels[i] or "" for i in train])
    test_labels = np.asarray([labels[i] or "" for i in test])
    encoder: Any = None
    if config.reid:
        from pixveil.evaluate.reid import get_face_encoder

        encoder = get_face_encoder()
    size = config.attack_image_size
    for n_done, (attack, res, context) in enumerate(runs):
        label = res.setting.label
        source, truth = crops.get(label, originals), originals
        if views is not None:
            source = views[label][context]
            truth = {i: infos[i].context_crops[context] for i in valid}
        train_prot = np.stack([source[i] for i in train])
        test_prot = np.stack([source[i] for i in test])
        shown = f"{label}, context {context}"

        def report(
            event: ProgressEvent, n_done: int = n_done, label: str = label, shown: str = shown
        ) -> None:
            progress(
                ProgressEvent(
                    "attack",
                    n_done,
                    len(runs),
                    f"{shown}: {event.message}",
                    item=label,
                    metrics=event.metrics,
                )
            )

        report(ProgressEvent(attack, 0, message=f"{attack} attack"))
        if attack == "cnn":
            from pixveil.evaluate.attacks.cnn_reid import cnn_reid_attack

            kwargs: dict[str, Any] = {"image_size": size, "seed": config.seed}
            if config.cnn_epochs is not None:
                kwargs["epochs"] = config.cnn_epochs
            cnn = cnn_reid_attack(
                train_prot, train_labels, test_prot, test_labels, progress=report, **kwargs
            )
            figures = {
                k: v for k, v in dataclasses.asdict(cnn).items() if not isinstance(v, np.ndarray)
            }
            _store(res, "cnn", context, figures)
        else:
            from pixveil.evaluate.attacks.reconstruction import reconstruction_attack

            kwargs = {"image_size": size, "seed": config.seed}
            if config.reconstruction_epochs is not None:
                kwargs["epochs"] = config.reconstruction_epochs
            train_orig = np.stack([truth[i] for i in train])
            test_orig = np.stack([truth[i] for i in test])
            rec = reconstruction_attack(
                train_orig, train_prot, test_orig, test_prot, progress=report, **kwargs
            )
            entry: dict[str, Any] = {
                "ssim_protected": rec.ssim_protected,
                "ssim_reconstructed": rec.ssim_reconstructed,
                "psnr_protected": rec.psnr_protected,
                "psnr_reconstructed": rec.psnr_reconstructed,
                "epochs": rec.epochs,
                "train_seconds": rec.train_seconds,
                "n_train": len(train),
                "n_test": len(test),
            }
            if encoder is not None and context == "1.2":
                entry.update(_crop_same_photo(encoder, test_orig, test_prot, rec.reconstructions))
            first = _store(res, "reconstruction", context, entry)
            if first:
                reconstructions[label] = (
                    _resize_all(test_prot[:_SHOWN_RECONSTRUCTIONS], size),
                    rec.reconstructions[:_SHOWN_RECONSTRUCTIONS],
                )
                reconstructions.setdefault(
                    "original", (_resize_all(test_orig[:_SHOWN_RECONSTRUCTIONS], size),) * 2
                )
    progress(ProgressEvent("attack", len(runs), len(runs), "attacks done"))


def _store(res: SettingResult, attack: str, context: str, figures: dict[str, Any]) -> bool:
    """File one attack run's ``figures`` under ``res.attacks[attack]``.

    The first context run becomes the entry's top level (with ``"context"``
    naming it); every context's figures go under ``"contexts"``.  Returns
    whether this was the first context of the entry.
    """
    first = attack not in res.attacks
    entry = res.attacks.setdefault(attack, {**figures, "context": context})
    entry.setdefault("contexts", {})[context] = dict(figures)
    return first


def _resize_all(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack([resize_square(im, size) for im in images])


def _crop_same_photo(
    encoder: Any, originals: np.ndarray, protected: np.ndarray, reconstructed: np.ndarray
) -> dict[str, Any]:
    """dlib same-photo verification of protected and reconstructed face crops.

    Each crop is enlarged to 150 px and encoded with the face assumed to fill
    the central 1/1.2 of it (the crops are the face box grown by 1.2).
    """
    size = 150
    inner = size / CROP_SCALE
    lo = (size - inner) / 2
    box = (lo, lo, lo + inner, lo + inner)

    def encode(images: np.ndarray) -> np.ndarray:
        return np.stack([encoder.encode(resize_square(im, size), box) for im in images])

    from pixveil.evaluate.reid import same_photo_verification

    orig = encode(originals)
    return {
        "same_photo_protected": same_photo_verification(orig, encode(protected)),
        "same_photo_reconstructed": same_photo_verification(orig, encode(reconstructed)),
    }
