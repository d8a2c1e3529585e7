"""Intake stage: discover subjects per cohort layout and write canonical, de-identified NIfTI."""
