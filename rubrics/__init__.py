"""Rubric schema, loading and validation, and the bundled example rubrics."""

from rubrics.schema import (
    BUNDLED_DIR,
    Criterion,
    Level,
    Rubric,
    RubricError,
    bundled_rubrics,
    load_rubric,
    parse_rubric,
)

__all__ = ["BUNDLED_DIR", "Criterion", "Level", "Rubric", "RubricError", "bundled_rubrics", "load_rubric", "parse_rubric"]
