"""One online score without per-call allocation: a prepared feature row and XGBoost's C API.

``Booster.inplace_predict`` spends most of a single-row call in Python around the C predictor:
it re-inspects the input, builds an array-interface JSON and a config JSON, and wraps the
result in new NumPy arrays, about 0.2-0.3 ms a call here against a few µs for the trees. A
decision's row always has the same shape, so ``PreparedRow`` keeps one float32 row buffer
whose array interface and predict config are built once, and calls the same C entry point
(``XGBoosterPredictFromDense``) that ``inplace_predict`` calls: the same predictor on the same
float32 values, so the same score bit for bit. Contributions (reason codes of a decline or
review) go through a one-row DMatrix made by the C API the same way.

The C entry points and their JSON configs are XGBoost internals, so ``PreparedRow`` checks
itself against the public methods when it is built, on a row of distinct values, and falls
back to them (slower, same numbers) if anything differs or is missing.
"""

from __future__ import annotations

import ctypes
import json
import math
from typing import Any, Final

import numpy as np

#: Prediction type codes of XGBoost's C API: 0 value, 2 exact contributions, 3 approximate.
_TYPE_VALUE: Final = 0
_TYPE_CONTRIBS: Final = 2
_TYPE_APPROX_CONTRIBS: Final = 3
#: Rows of the self-check; distinct values so that a wrong stride or column order shows.
_CHECK_ROWS: Final = 4


def _jcargs(**kwargs: Any) -> bytes:
    """The JSON config bytes XGBoost's Python package builds for the same call."""
    return json.dumps(kwargs).encode("utf-8")


class PreparedRow:
    """A reusable one-row feature buffer scored by a booster without per-call allocation."""

    def __init__(self, booster: Any, feature_names: tuple[str, ...], nthread: int) -> None:
        self.booster = booster
        self.row = np.zeros((1, len(feature_names)), np.float32)
        self._names = list(feature_names)
        self._n = len(feature_names)
        self._nthread = nthread
        self._fast = False
        try:
            self._prepare()
            self._fast = self._self_check()
        except (AttributeError, ImportError, OSError, ValueError, TypeError):
            self._fast = False
        self.row[:] = 0.0

    @property
    def prepared(self) -> bool:
        """True when scoring goes straight to the C API (False: the public, slower methods)."""
        return self._fast

    def _prepare(self) -> None:
        from xgboost._data_utils import array_interface
        from xgboost.core import _LIB

        self._lib = _LIB
        self._handle = self.booster.handle
        self._interface = array_interface(self.row)
        self._value_config = _jcargs(type=_TYPE_VALUE, training=False, iteration_begin=0,
                                     iteration_end=0, missing=math.nan, strict_shape=False,
                                     cache_id=0)
        self._dmatrix_config = _jcargs(missing=math.nan, nthread=int(self._nthread),
                                       data_split_mode=0)
        self._contrib_config = {
            method: _jcargs(type=code, training=False, iteration_begin=0, iteration_end=0,
                            strict_shape=False)
            for method, code in (("pred_contribs", _TYPE_CONTRIBS),
                                 ("approx_contribs", _TYPE_APPROX_CONTRIBS))}
        self._preds = ctypes.POINTER(ctypes.c_float)()
        self._shape = ctypes.POINTER(ctypes.c_uint64)()
        self._dims = ctypes.c_uint64()
        self._no_proxy = ctypes.c_void_p()

    def _self_check(self) -> bool:
        """The prepared calls give exactly what the public methods give on a few rows."""
        rng = np.random.default_rng(0)
        for _ in range(_CHECK_ROWS):
            self.row[0] = rng.normal(0.0, 3.0, self._n).astype(np.float32)
            if self._score_c() != float(self.booster.inplace_predict(self.row)[0]):
                return False
            for method in self._contrib_config:
                if not np.array_equal(self._contribs_c(method), self._contribs_public(method)):
                    return False
        return True

    def score(self) -> float:
        """The model's score of ``row`` (what ``inplace_predict(row)[0]`` returns)."""
        if self._fast:
            return self._score_c()
        return float(self.booster.inplace_predict(self.row)[0])

    def contributions(self, method: str) -> np.ndarray:
        """Per-feature contributions of ``row`` (shape 1 x features + 1; last: the bias)."""
        if self._fast:
            return self._contribs_c(method)
        return self._contribs_public(method)

    def _check(self, ret: int) -> None:
        if ret != 0:
            from xgboost.core import XGBoostError
            raise XGBoostError(self._lib.XGBGetLastError().decode("utf-8", "replace"))

    def _score_c(self) -> float:
        self._check(self._lib.XGBoosterPredictFromDense(
            self._handle, self._interface, self._value_config, self._no_proxy,
            ctypes.byref(self._shape), ctypes.byref(self._dims), ctypes.byref(self._preds)))
        return float(self._preds[0])

    def _contribs_c(self, method: str) -> np.ndarray:
        matrix = ctypes.c_void_p()
        self._check(self._lib.XGDMatrixCreateFromDense(self._interface, self._dmatrix_config,
                                                       ctypes.byref(matrix)))
        try:
            self._check(self._lib.XGBoosterPredictFromDMatrix(
                self._handle, matrix, self._contrib_config[method], ctypes.byref(self._shape),
                ctypes.byref(self._dims), ctypes.byref(self._preds)))
            width = self._n + 1
            out = np.empty((1, width), np.float32)
            ctypes.memmove(out.ctypes.data, self._preds, width * out.itemsize)
            return out
        finally:
            self._lib.XGDMatrixFree(matrix)

    def _contribs_public(self, method: str) -> np.ndarray:
        import xgboost as xgb

        matrix = xgb.DMatrix(self.row, feature_names=self._names, nthread=self._nthread)
        return self.booster.predict(matrix, pred_contribs=True,
                                    approx_contribs=method == "approx_contribs")
