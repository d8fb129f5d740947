"""Rubric schema, loading and validation, and the bundled example rubrics."""

from rubrics.schema import (
    BUNDLED_DIR,
    Award,
    Criterion,
    Level,
    Rubric,
    RubricError,
    bundled_rubrics,
    load_rubric,
    parse_rubric,
)

__all__ = ["BUNDLED_DIR", "Award", "Criterion", "Level", "Rubric", "RubricError", "bundled_rubrics", "load_rubric", "parse_rubric"]
