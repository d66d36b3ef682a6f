"""Reading and writing the files of an archive: one module per format or concern.

- :mod:`~radflow.io.discovery`: which patients, images and masks an archive (or a CSV
  manifest) holds.
- :mod:`~radflow.io.image_file`: NIfTI, NRRD and MetaImage volumes and label maps.
- :mod:`~radflow.io.dicom`: find DICOM series in a folder, sort and read their slices.
- :mod:`~radflow.io.rtstruct`, :mod:`~radflow.io.seg`: rasterise RTSTRUCT contours and
  SEG segments onto a series' grid.
- :mod:`~radflow.io.dicom_series`: one DICOM series with its label maps as a
  :class:`~radflow.io.records.SeriesRecord`.
- :mod:`~radflow.io.suv`, :mod:`~radflow.io.acquisition`: SUV body weight and the
  technical acquisition metadata from DICOM headers.
- :mod:`~radflow.io.records`: the records the readers hand to the store.
- :mod:`~radflow.io.pseudonym`: keyed pseudonyms of patient and DICOM identifiers.
- :mod:`~radflow.io.dicom_write`: write DICOM series, RTSTRUCTs and SEGs (tests, demo).

Nothing here imports another radflow layer but the ground (errors, ``_atomic``,
``_geometry``, ``_lazy``).
"""
