"""A scikit-learn hyperparameter sweep: a pandas DataFrame of settings, one
task per row (a foreach, run in parallel), cross-validated on a data set that
ships with scikit-learn, and the best model picked in the join.

Needs the `examples` extra: pip install "cairn[examples]" (numpy, pandas, scikit-learn)."""

# Imported at the top on purpose: the warm worker imports them once and every
# task it forks has them already loaded.
import pandas as pd
from cairn import FlowSpec, Parameter, current, step
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def setting(row: dict, key: str, cast: type):
    """One hyperparameter of a grid row: a DataFrame stores the ones a model
    does not use as NaN, and whole numbers of a mixed column as floats."""
    value = row.get(key)
    return None if value is None or pd.isna(value) else cast(value)


def build_model(row: dict, seed: int):
    """The estimator a row of the grid describes."""
    if row["model"] == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=setting(row, "C", float), max_iter=2000))
    if row["model"] == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=setting(row, "k", int)))
    return RandomForestClassifier(n_estimators=setting(row, "trees", int), max_depth=setting(row, "depth", int),
                                  random_state=seed, n_jobs=1)


class SklearnSweepFlow(FlowSpec):
    """Which classifier and settings fit the wine data set best?"""

    folds = Parameter("folds", default=3, help="cross-validation folds")
    seed = Parameter("seed", default=0, help="random seed of the forests")

    @step
    def start(self):
        """Build the grid of settings as a DataFrame and fan out over its rows."""
        rows = [{"model": "logreg", "C": c} for c in (0.01, 1.0, 100.0)]
        rows += [{"model": "knn", "k": k} for k in (1, 15)]
        rows += [{"model": "forest", "trees": 30, "depth": d} for d in (1, None)]
        self.grid = pd.DataFrame(rows, columns=["model", "C", "k", "trees", "depth"])
        self.rows = self.grid.to_dict("records")  # one dict per row, in grid order
        self.next(self.train, foreach="rows")

    @step
    def train(self):
        """Cross-validate one setting, then fit it on all the data."""
        x, y = load_wine(return_X_y=True)
        self.setting = {k: v for k, v in self.input.items() if not pd.isna(v)}
        model = build_model(self.input, self.seed)
        scores = cross_val_score(model, x, y, cv=self.folds)
        self.score = float(scores.mean())
        self.model = model.fit(x, y)
        print(f"split {current.index}: {self.setting} -> {self.score:.3f}")
        self.next(self.pick)

    @step
    def pick(self, inputs):
        """Tabulate every result (in grid order) and keep the best model."""
        self.merge_artifacts(inputs, include=["grid"])  # the same DataFrame in every input
        self.results = self.grid.assign(score=[inp.score for inp in inputs])
        best = max(inputs, key=lambda inp: inp.score)
        self.best_setting = best.setting
        self.best_score = best.score
        self.best_model = best.model
        self.next(self.end)

    @step
    def end(self):
        """Report the winner."""
        x, y = load_wine(return_X_y=True)
        self.train_accuracy = float(self.best_model.score(x, y))
        print(self.results.sort_values("score", ascending=False).to_string(index=False))
        print(f"best: {self.best_setting} (cv accuracy {self.best_score:.3f})")


if __name__ == "__main__":
    SklearnSweepFlow()
