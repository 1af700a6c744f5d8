"""Evaluation: metrics of a confusion matrix, the scoring of a run's split (scoring), per-image
error analysis (analysis) and its plots (plots), the reports evaluate writes (reports), the
evaluation job (evaluate), and KITTI's own devkit, bird's-eye view and submission (kitti/)."""
