"""Dataset analysis: every statistic a recommender study starts from, as JSON and an HTML report.

>>> from serendip.data.analysis import analyze_dataset, write_report
>>> analysis = analyze_dataset(ds)            # doctest: +SKIP
>>> write_report(analysis, "out/analysis")    # doctest: +SKIP  (report.html, analysis.json, plots/)
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
from serendip.data.analysis._report import write_report

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
    "write_report",
]
