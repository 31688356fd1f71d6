"""How close an answer must be to count: check's tolerance modes, the way PrairieLearn's
matrix input compares numbers (``prairielearn.grading_utils``: ``is_correct_scalar_dd`` for
decimal digits, ``_sf`` for significant figures, ``_ra`` for relative and absolute)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attncli.errors import InputError

#: Answers printed in full by a program may carry float32 rounding, "float noise": this
#: fraction of the largest number of the step (a sum of products errs relative to its terms,
#: so an entry near 0 from cancellation errs as much as a large one).
MACHINE_RTOL = 1e-6
#: A tolerance the teacher sets (decimals:N, sigfigs, rel, abs) allows float64 noise only: an
#: exact 0 computes as 3e-18, but 6.683110 for 6.683105 fails --rtol 1e-9 as asked.
FLOAT64_RTOL = 1e-12
#: A step given without a step it is computed from (work not shown) may differ by this
#: fraction on top of its own rounding, and by at most UNSEEN_UNITS units of its last written
#: decimal: the slips of steps the grader cannot see. The context that "Attention Mechanisms
#: and Self-Attention in Neural Networks" publishes is 4 units of the 4th decimal off (0.1 %).
UNSEEN_RTOL = 2e-3
UNSEEN_UNITS = 5
#: Where the exact value is −∞, a number this negative or more stands in for it (d2l's
#: masked_softmax fills −1e6).
STAND_IN = -1e4

_FORMS = "decimals, decimals:N, sigfigs:N, rel:R or abs:A (e.g. sigfigs:3, rel:0.01)"


@dataclass(frozen=True)
class Tolerance:
    """One tolerance mode.

    mode:
        ``decimals`` (the default): an entry written with k decimals (the most of any entry
            of its step) must be the reference rounded to k decimals, give or take float
            noise (10⁻⁶ of the step's largest number); a step written in whole numbers must
            be exact (scores [2, 4, 4] are; weights [1, 0, 0] for [0.63, 0.2, 0.17] are not
            rounded weights but wrong ones). ``decimals:N`` fixes k = N, 0 included
            (PrairieLearn's ``digits``).
        ``sigfigs``: N significant figures of the reference (PrairieLearn's ``sigfig``).
        ``rel`` / ``abs`` / ``relabs``: |given − reference| ≤ atol + rtol·|reference|
            (numpy.allclose, PrairieLearn's ``relabs``), give or take float noise.
    PrairieLearn allows 0.51 of a unit in the last digit; here it is half a unit plus float
    noise, so that only the correctly rounded number passes (either one at a tie).
    """

    mode: str = "decimals"
    digits: int | None = None
    rtol: float = 0.0
    atol: float = 0.0

    @classmethod
    def parse(cls, text: str | None, rtol: float | None = None,
              atol: float | None = None) -> Tolerance:
        """``--tolerance TEXT`` or ``--rtol/--atol`` (aliases of rel:R and abs:A, together
        relative plus absolute).

        Raises: InputError for an unknown form, a bad number, or both kinds given.
        """
        for name, value in (("--rtol", rtol), ("--atol", atol)):
            if value is not None and not (value >= 0 and math.isfinite(value)):
                raise InputError(f"{name} must be a finite number ≥ 0, got {value}")
        if rtol is not None or atol is not None:
            if text is not None:
                raise InputError(f"--tolerance {text} and --rtol/--atol contradict each other: "
                                 "give one")
            return cls("relabs", rtol=rtol or 0.0, atol=atol or 0.0)
        if text is None or text.strip() == "decimals":
            return cls()
        mode, _, number = (part.strip() for part in text.partition(":"))
        try:
            if mode in ("decimals", "sigfigs") and number:
                digits = int(number)
                if not (mode == "decimals" and 0 <= digits <= 17 or 1 <= digits <= 17):
                    raise ValueError
                return cls(mode, digits=digits)
            if mode in ("rel", "abs") and number:
                value = float(number)
                if not (value >= 0 and math.isfinite(value)):
                    raise ValueError
                return cls(mode, rtol=value if mode == "rel" else 0.0,
                           atol=value if mode == "abs" else 0.0)
        except ValueError:
            raise InputError(f"--tolerance {text}: bad number {number!r}; expected {_FORMS}, "
                             "N from 1 to 17 (decimals: 0 to 17), R and A finite ≥ 0") from None
        raise InputError(f"--tolerance {text}: expected {_FORMS}")

    @property
    def by_hand(self) -> bool:
        """The default: decimals as written, with the allowance for steps not shown."""
        return self.mode == "decimals" and self.digits is None

    def __str__(self) -> str:
        if self.mode == "relabs":
            return f"rel:{self.rtol:g} + abs:{self.atol:g}"
        if self.mode in ("rel", "abs"):
            return f"{self.mode}:{self.rtol if self.mode == 'rel' else self.atol:g}"
        return self.mode if self.digits is None else f"{self.mode}:{self.digits}"

    def allowed(self, reference: np.ndarray, decimals: np.ndarray) -> np.ndarray:
        """Per entry, the largest |given − reference| that counts (0 where the reference is
        ±∞: there only the same infinity counts).

        Shapes: reference and decimals (written decimals per entry) of the answer's shape.
        """
        finite = np.isfinite(reference)
        size = np.abs(np.where(finite, reference, 0.0))
        rtol = MACHINE_RTOL if self.by_hand else FLOAT64_RTOL
        noise = rtol * (float(np.max(size)) if size.size else 0.0)
        if self.mode == "decimals":
            k = np.asarray(decimals if self.digits is None else np.full(size.shape, self.digits),
                           dtype=np.float64)
            allowed = 0.5 * 10.0 ** -k * (1 + 1e-9) + noise
            if self.digits is None:  # a whole number as written is exact: weights written
                allowed = np.where(k > 0, allowed, noise)  # [1, 0, 0] are not rounded ones
        elif self.mode == "sigfigs":
            with np.errstate(divide="ignore"):
                magnitude = np.floor(np.log10(np.where(size > 0, size, 1.0)))
            k = np.where(size > 0, self.digits - 1 - magnitude, self.digits - 1)
            allowed = 0.5 * 10.0 ** -k * (1 + 1e-9) + noise
        else:  # with float noise too: an exact 0 (orthogonal vectors) computes as 3e-18
            allowed = self.atol + self.rtol * size + noise
        return np.where(finite, allowed, 0.0)


def within(given: np.ndarray, reference: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per entry: |given − reference| ≤ allowed, or both the same infinity; NaN never."""
    same = np.isinf(given) & (given == reference)
    with np.errstate(invalid="ignore"):
        error = np.abs(given - reference)
    return same | (np.isfinite(error) & (error <= allowed))
