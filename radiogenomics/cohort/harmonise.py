"""ComBat harmonisation (cohort stage) as a scikit-learn transformer fitted on training rows only.

The batch label travels with X as a column (default `site`) so the transformer can sit inside a
Pipeline and inside nested CV; it strips that column. Sites seen in training use the training
estimates (`neuroCombatFromTraining`); a site never seen in training is, when asked, harmonised
label-free to the harmonised training data as ComBat reference batch (`neuroCombat(ref_batch=)`),
using only that site's own features, so no label and no training parameter is re-estimated.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from neuroCombat import neuroCombat, neuroCombatFromTraining
from sklearn.base import BaseEstimator, TransformerMixin

log = logging.getLogger(__name__)
REFERENCE = "__discovery_reference__"


@contextlib.contextmanager
def _quiet_combat() -> Iterator[None]:
    """Silence neuroCombat's prints; shim `np.int` (gone since NumPy 1.24, used by ref_batch)."""
    had_int = hasattr(np, "int")
    if not had_int:
        np.int = int  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # neurocombat 0.2.12 converts 1-element arrays with int() and divides by zero
            # in its EB convergence check for features already on target; both are harmless.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        if not had_int:
            del np.int  # type: ignore[attr-defined]


def _combat_fit(data: np.ndarray, batch: np.ndarray, ref_batch: str | None = None) -> dict:
    """Run neuroCombat on samples x features; returns its dict (data is features x samples)."""
    covars = pd.DataFrame({"batch": batch.astype(str)})
    with _quiet_combat():
        return neuroCombat(
            dat=data.T.astype(float), covars=covars, batch_col="batch", ref_batch=ref_batch
        )


def column_nanmedians(values: np.ndarray) -> np.ndarray:
    """np.nanmedian(values, axis=0) (NaN for an all-missing column) from one sort: nanmedian takes
    a masked-array path on small arrays that cost more than the rest of an imputer fit."""
    values = np.asarray(values, float)
    if not len(values):
        return np.full(values.shape[1], np.nan)
    ordered = np.sort(values, axis=0)  # NaN sorts last
    n = (~np.isnan(values)).sum(axis=0)
    cols = np.arange(values.shape[1])
    lo = ordered[np.maximum((n - 1) // 2, 0), cols]
    hi = ordered[np.minimum(n // 2, len(values) - 1), cols]
    with np.errstate(invalid="ignore"):
        mid = np.where(n % 2 == 1, lo, (lo + hi) / 2.0)
    return np.where(n > 0, mid, np.nan)


def _positions_except(columns: pd.Index, name: str) -> np.ndarray:
    """Positions of every column but `name`, in order."""
    return np.flatnonzero(np.asarray(columns != name))


@dataclass(frozen=True, eq=False)
class BatchedRows:
    """Feature rows as one float array plus each row's batch label: what FrameImputer and
    ComBatHarmoniser read from a feature frame, taken out once so that a nested CV indexes arrays
    (pandas' fixed cost per call was most of a small fold's work). `rows[index]` takes rows by
    position (`cohort.models.take_rows`)."""

    values: np.ndarray  # (n, p) float, C order
    batch: np.ndarray  # (n,) batch label of each row (str)
    columns: tuple[str, ...]  # names of the p value columns
    batch_name: str

    @classmethod
    def from_frame(cls, X: pd.DataFrame, batch: str) -> BatchedRows:
        """Split a frame's batch column from its (numeric) value columns."""
        # One positional block read: selecting columns by a list of names costs more than the
        # rest of a transform inside a nested CV.
        pos = _positions_except(X.columns, batch)
        values = np.ascontiguousarray(X.iloc[:, pos].to_numpy(dtype=float))
        labels = X[batch].astype(str).to_numpy()
        return cls(values, labels, tuple(X.columns[pos]), batch)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index) -> BatchedRows:
        """Rows by position, with their batch labels."""
        return BatchedRows(self.values[index], self.batch[index], self.columns, self.batch_name)


def _batched_parts(X, batch: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(batch labels, float values of every other column, their names) of a frame or BatchedRows."""
    if isinstance(X, BatchedRows):
        if X.batch_name != batch:
            raise ValueError(f"rows carry batch {X.batch_name!r}, the transformer wants {batch!r}")
        return X.batch, X.values, X.columns
    if not isinstance(X, pd.DataFrame) or batch not in X.columns:
        raise ValueError(f"ComBatHarmoniser needs a DataFrame with batch column {batch!r}")
    rows = BatchedRows.from_frame(X, batch)
    return rows.batch, rows.values, rows.columns


class ComBatHarmoniser(TransformerMixin, BaseEstimator):
    """ComBat on the feature columns of a DataFrame; `batch` names the batch column (stripped).

    unseen: "reference" harmonises sites unseen in training to the discovery reference
    (label-free, from that site's own rows); "none" leaves them unharmonised.
    passthrough_prefix: columns (e.g. clinical covariates) that are not imaging features.
    as_frame: transform returns a DataFrame (display tables) or a bare array (model pipelines:
    scikit-learn checks every column's dtype of a DataFrame on each call, which took two thirds
    of a 1,400-feature nested CV).
    """

    def __init__(
        self,
        batch: str = "site",
        unseen: str = "reference",
        passthrough_prefix: str = "clinical__",
        enabled: bool = True,
        as_frame: bool = True,
    ) -> None:
        self.batch = batch
        self.unseen = unseen
        self.passthrough_prefix = passthrough_prefix
        self.enabled = enabled
        self.as_frame = as_frame

    def fit(self, X: pd.DataFrame, y=None) -> ComBatHarmoniser:
        """Estimate ComBat parameters from these (training) rows only."""
        batch, full, cols = _batched_parts(X, self.batch)
        self.feature_names_in_ = np.asarray(cols, dtype=object)
        prefix = self.passthrough_prefix
        self.feature_idx_ = np.flatnonzero([not str(c).startswith(prefix) for c in cols])
        self.feature_cols_ = [cols[i] for i in self.feature_idx_]
        values = full[:, self.feature_idx_]
        if np.isnan(values).any():
            raise ValueError("ComBatHarmoniser got missing values: impute before harmonising")
        self.batches_, counts = np.unique(batch, return_counts=True)
        # ComBat needs >= 2 batches with >= 2 rows and non-constant features; otherwise identity.
        sd = values.std(axis=0)
        self.combat_cols_ = np.flatnonzero(sd > 0)
        self.active_ = bool(
            self.enabled
            and len(self.batches_) >= 2
            and counts.min() >= 2
            and len(self.combat_cols_)
        )
        self.estimates_ = None
        self.reference_ = values  # harmonised training features: the reference for unseen sites
        if self.active_:
            out = _combat_fit(values[:, self.combat_cols_], batch)
            self.estimates_ = out["estimates"]
            ref = values.copy()
            ref[:, self.combat_cols_] = np.asarray(out["data"]).T
            self.reference_ = ref
        return self

    def _seen(self, values: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """Apply the training estimates to rows of training sites."""
        out = values.copy()
        with _quiet_combat(), np.errstate(all="ignore"):
            sub = values[:, self.combat_cols_].T
            res = neuroCombatFromTraining(dat=sub, batch=batch, estimates=self.estimates_)
        out[:, self.combat_cols_] = np.asarray(res["data"]).T
        return out

    def _unseen(self, values: np.ndarray) -> np.ndarray:
        """Harmonise one unseen site to the training reference from its own rows only."""
        if len(values) < 2:
            log.warning(
                "unseen site with %d row(s): cannot estimate its scale; left as is", len(values)
            )
            return values
        ref = self.reference_[:, self.combat_cols_]
        stacked = np.vstack([ref, values[:, self.combat_cols_]])
        batch = np.array([REFERENCE] * len(ref) + ["new"] * len(values))
        res = _combat_fit(stacked, batch, ref_batch=REFERENCE)
        out = values.copy()
        out[:, self.combat_cols_] = np.asarray(res["data"]).T[len(ref) :]
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame | np.ndarray:
        """Harmonise rows with the fitted estimates; the batch column is dropped."""
        batch, full, cols = _batched_parts(X, self.batch)
        if not np.array_equal(np.asarray(cols, dtype=object), self.feature_names_in_):
            raise ValueError("ComBatHarmoniser.transform got other columns than fit")
        full = np.array(full, dtype=float, order="C")  # a copy: never write into the input
        values = full[:, self.feature_idx_]
        out = values.copy()
        seen = np.isin(batch, self.batches_)
        if self.active_ and seen.any():
            out[seen] = self._seen(values[seen], batch[seen])
        # An unseen site is mapped onto the (harmonised) training data even when training had a
        # single site, where ComBat itself has nothing to estimate.
        if self.enabled and self.unseen == "reference" and len(self.combat_cols_):
            for site in sorted(set(batch[~seen])):
                rows = batch == site
                out[rows] = self._unseen(values[rows])
        # One block write: column-wise assignment costs more than ComBat itself here.
        full[:, self.feature_idx_] = out
        if not self.as_frame:
            return full
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(full, columns=list(cols), index=index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Feature names after the batch column is stripped."""
        return self.feature_names_in_


class FrameImputer(TransformerMixin, BaseEstimator):
    """Median imputation that keeps the batch column for ComBat downstream: a DataFrame in, a
    DataFrame out; BatchedRows in, BatchedRows out."""

    def __init__(self, batch: str = "site") -> None:
        self.batch = batch

    def fit(self, X: pd.DataFrame | BatchedRows, y=None) -> FrameImputer:
        """Learn training medians; columns all-missing in training are dropped."""
        if isinstance(X, BatchedRows):
            values, cols = X.values, X.columns
            self.keep_batch_ = True
        else:
            pos = _positions_except(X.columns, self.batch)
            values, cols = X.iloc[:, pos].to_numpy(dtype=float), tuple(X.columns[pos])
            self.keep_batch_ = self.batch in X.columns
        med = column_nanmedians(values)
        keep = np.flatnonzero(~np.isnan(med))
        self.fit_columns_ = cols
        self.keep_idx_ = keep
        self.columns_ = [cols[i] for i in keep]
        self.medians_ = med[keep]
        return self

    def _values(self, X: pd.DataFrame | BatchedRows) -> np.ndarray:
        """The kept columns of X as a C-ordered float array (reductions then round alike)."""
        rows = isinstance(X, BatchedRows)
        if rows and X.columns == self.fit_columns_:
            return X.values[:, self.keep_idx_]
        idx = pd.Index(X.columns).get_indexer(self.columns_)
        if (idx < 0).any():
            missing = [c for c, i in zip(self.columns_, idx, strict=True) if i < 0]
            raise KeyError(f"FrameImputer.transform: columns missing: {missing[:5]}")
        if rows:
            return X.values[:, idx]
        return np.ascontiguousarray(X.iloc[:, idx].to_numpy(dtype=float))

    def transform(self, X: pd.DataFrame | BatchedRows) -> pd.DataFrame | BatchedRows:
        """Fill missing values with training medians."""
        values = self._values(X)
        values = np.where(np.isnan(values), self.medians_, values)
        if isinstance(X, BatchedRows):
            return BatchedRows(values, X.batch, tuple(self.columns_), X.batch_name)
        out = pd.DataFrame(values, columns=self.columns_, index=X.index)
        if self.keep_batch_:
            out[self.batch] = X[self.batch].astype(str).to_numpy()
        return out


def harmonise_table(
    df: pd.DataFrame, feature_cols: list[str], batch: str = "site", train_mask=None
) -> pd.DataFrame:
    """Display table: ComBat fitted on `train_mask` rows (default all), applied to every row."""
    train_mask = np.ones(len(df), bool) if train_mask is None else np.asarray(train_mask, bool)
    X = df[[*feature_cols, batch]].copy()
    imp = FrameImputer(batch).fit(X[train_mask])
    Xi = imp.transform(X)
    comb = ComBatHarmoniser(batch=batch).fit(Xi[train_mask])
    harmonised = comb.transform(Xi)
    cols = list(harmonised.columns)
    values = harmonised.to_numpy()
    # Imputed cells were only needed by ComBat: show them missing again.
    values[df[cols].isna().to_numpy()] = np.nan
    # One concat, not a column assignment (pandas splits its blocks once per assigned column).
    new = pd.DataFrame(values, columns=cols, index=df.index)
    return pd.concat([df.drop(columns=cols), new], axis=1)[list(df.columns)]


def run_harmonise(features_path: str, batch: str, enabled: bool, out: str) -> None:
    """Rule harmonise_features: display table, ComBat fitted on discovery rows, applied to all."""
    from radiogenomics.io import read_tsv, write_tsv

    df = read_tsv(features_path, dtype={"subject": str, "session": str})
    feats = [c for c in df.columns if "__" in c and not c.startswith("prov__")]
    if not enabled or df.empty or not feats:
        write_tsv(df, out)
        return
    write_tsv(harmonise_table(df, feats, batch, df["role"] == "discovery"), out)
