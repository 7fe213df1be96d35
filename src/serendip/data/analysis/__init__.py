"""Dataset analysis: every statistic a recommender study starts from, as JSON and an HTML report.

`analyze_dataset(ds)` measures a loaded `Dataset` into a frozen `DatasetAnalysis` (its
`.to_dict()` is the JSON record); `write_report(analysis, out_dir)` writes report.html (standalone,
plots embedded), analysis.json and plots/*.png.

>>> from serendip.data.analysis import analyze_dataset, write_report
>>> analysis = analyze_dataset(ds)  # doctest: +SKIP
>>> write_report(analysis, "out/analysis")  # doctest: +SKIP
PosixPath('out/analysis/report.html')
"""

from serendip.data.analysis._analyze import ProgressCallback, analyze_dataset
from serendip.data.analysis._model import (
    ActivityStats,
    ColdCount,
    ColdStartStats,
    Conversion,
    Counts,
    DatasetAnalysis,
    Distribution,
    EventFunnel,
    Growth,
    Histogram,
    InNetworkStats,
    MetadataStats,
    QualityIssue,
    SocialStats,
    TemporalStats,
    ValueStats,
)
from serendip.data.analysis._report import style_axes, write_report

__all__ = [
    "ActivityStats",
    "ColdCount",
    "ColdStartStats",
    "Conversion",
    "Counts",
    "DatasetAnalysis",
    "Distribution",
    "EventFunnel",
    "Growth",
    "Histogram",
    "InNetworkStats",
    "MetadataStats",
    "ProgressCallback",
    "QualityIssue",
    "SocialStats",
    "TemporalStats",
    "ValueStats",
    "analyze_dataset",
    "style_axes",
    "write_report",
]
