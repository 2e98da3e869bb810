"""The one image reader: a file or a shard member becomes the 8-bit RGB image a model's transform expects.

Used by prepare-csv, by every training rank (CSV and webdataset), by eval and --val-zeroshot, and by
the demo: high bit depth mapped by an intensity policy, DICOM through pydicom, EXIF orientation
applied, giant images read reduced. See docs/data.md, "Medical image formats".
"""
