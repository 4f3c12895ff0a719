"""Readers and writers of the field's formats (DICOM, NIfTI, pictures, WFDB, EDF), de-identification, and the folder walker."""
