"""Readers of real 3D scan datasets in their published layouts (ScanNet v2, ARKitScenes 3DOD), each
yielding the one internal form of :mod:`.scan`; and writers of scans of known geometry in those
layouts, for tests and benchmarks."""
