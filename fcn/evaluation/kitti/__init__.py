"""The KITTI road benchmark's own code: devkit metrics, bird's-eye view, submission files."""
