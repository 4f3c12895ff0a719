"""De-identification of DICOM headers: the basic application level confidentiality profile of
DICOM PS3.15 (Annex E, Table E.1-1).

Two uses:

* :func:`identifying_elements` / :func:`read_identity` split a file's header into what may be
  shown (modality, body part, geometry) and what identifies a patient, a study, an institution or
  a device (names, IDs, dates, addresses, serial numbers, every instance UID). Reports show the
  first and, by default, only the *names* of the second.
* :func:`deidentify` applies the profile's actions to a copy of a dataset: remove (``X``),
  empty (``Z``), replace by a dummy value (``D``) or by a new UID derived from the old one
  (``U``; the same old UID always maps to the same new one, so a series stays a series), and
  removes every private element (the profile keeps none unless an option says so).

A UID is identifying unless it is a well-known DICOM UID (a SOP class, a transfer syntax): the
profile replaces every instance UID, and a UID in the standard's registry names a kind of object,
never a patient. File names that look like UIDs (``1.2.840.113619.2.55.3.604688119...dcm``, as
PACS exports name them) are identifying too (:func:`is_uid_like`).

Reference: DICOM PS3.15 2024b, "Security and System Management Profiles", Annex E
"Attribute Confidentiality Profiles", Table E.1-1 (basic profile column). The options of the
profile (retain dates, retain device identity, clean descriptors, ...) are not implemented: the
basic profile is the strictest.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

from medlens.errors import FileFormatError

__all__ = [
    "BASIC_PROFILE",
    "DicomIdentity",
    "deidentify",
    "identifying_elements",
    "is_uid_like",
    "pixel_identity_flags",
    "read_identity",
]

PathLike = str | os.PathLike

# Action codes of Table E.1-1, basic profile column. Where the table gives a compound code (for
# instance X/Z/D, "X unless Z or D is required by the IOD"), the strictest applicable action is
# kept: X when the element is optional (Type 3), else Z, else D.
#   X remove, Z replace by an empty value, D replace by a dummy value, U replace by a new UID.
_X = (
    "AcquisitionComments AcquisitionContextSequence AcquisitionDateTime AcquisitionDeviceProcessingDescription "
    "AcquisitionProtocolDescription ActualHumanPerformersSequence AdditionalPatientHistory AddressTrial AdmissionID "
    "AdmittingDate AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription AdmittingTime "
    "AffectedSOPInstanceUID Allergies Arbitrary AuthorObserverSequence BranchOfService CassetteID "
    "CommentsOnThePerformedProcedureStep ConfidentialityConstraintOnPatientDataDescription "
    "ContentCreatorIdentificationCodeSequence ContributionDescription CountryOfResidence CurrentPatientLocation "
    "CurveDate CurveTime CustodialOrganizationSequence DataSetTrailingPadding DateOfLastCalibration "
    "DerivationDescription DetectorID DeviceSerialNumber DigitalSignaturesSequence DischargeDiagnosisDescription "
    "DistributionAddress DistributionName EthnicGroup FrameComments GantryID GeneratorID HumanPerformerName "
    "HumanPerformerOrganization IconImageSequence IdentifyingComments ImageComments ImagePresentationComments "
    "ImagingServiceRequestComments Impressions InstanceCoercionDateTime InstanceCreationDate InstanceCreationTime "
    "InstitutionAddress InstitutionCodeSequence InstitutionName InstitutionalDepartmentName "
    "InstitutionalDepartmentTypeCodeSequence InsurancePlanIdentification "
    "IntendedRecipientsOfResultsIdentificationSequence InterpretationApproverSequence InterpretationAuthor "
    "InterpretationDiagnosisDescription InterpretationIDIssuer InterpretationRecorder InterpretationText "
    "InterpretationTranscriber IssuerOfAdmissionID IssuerOfPatientID IssuerOfServiceEpisodeID LastMenstrualDate MAC "
    "MedicalAlerts MedicalRecordLocator MilitaryRank ModifiedAttributesSequence ModifiedImageDescription "
    "ModifyingDeviceID NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults Occupation "
    "OperatorIdentificationSequence OperatorsName OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation "
    "OriginalAttributesSequence OtherPatientIDs OtherPatientIDsSequence OtherPatientNames "
    "OverlayDate OverlayTime ParticipantSequence PatientAddress PatientAge PatientBirthName PatientBirthTime "
    "PatientComments PatientInstitutionResidence PatientInsurancePlanCodeSequence PatientMotherBirthName "
    "PatientPrimaryLanguageCodeSequence PatientPrimaryLanguageModifierCodeSequence PatientReligiousPreference "
    "PatientSexNeutered PatientSize PatientState PatientTelephoneNumbers PatientTransportArrangements PatientWeight "
    "PerformedLocation PerformedProcedureStepDescription PerformedProcedureStepEndDate PerformedProcedureStepEndTime "
    "PerformedProcedureStepID PerformedProcedureStepStartDate PerformedProcedureStepStartTime "
    "PerformedStationAETitle PerformedStationGeographicLocationCodeSequence PerformedStationName "
    "PerformedStationNameCodeSequence PerformingPhysicianIdentificationSequence PerformingPhysicianName "
    "PersonAddress PersonTelephoneNumbers PhysicianApprovingInterpretation "
    "PhysiciansOfRecord PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence "
    "PlateID PreMedication PregnancyStatus ProtocolName ReasonForStudy ReasonForTheImagingServiceRequest "
    "ReferencedDigitalSignatureSequence ReferencedPatientAliasSequence ReferencedPatientPhotoSequence "
    "ReferencedPatientSequence ReferencedSOPInstanceMACSequence ReferencedStudySequence ReferringPhysicianAddress "
    "ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers RegionOfResidence "
    "RequestAttributesSequence RequestedContrastAgent RequestedProcedureComments RequestedProcedureDescription "
    "RequestedProcedureID RequestedProcedureLocation RequestingPhysician RequestingService ResponsibleOrganization "
    "ResponsiblePerson ResultsComments ResultsDistributionListSequence ResultsIDIssuer ReviewerName "
    "ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence "
    "ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName "
    "ScheduledProcedureStepDescription ScheduledProcedureStepEndDate ScheduledProcedureStepEndTime "
    "ScheduledProcedureStepLocation ScheduledProcedureStepStartDate ScheduledProcedureStepStartTime "
    "ScheduledStationAETitle ScheduledStationGeographicLocationCodeSequence ScheduledStationName "
    "ScheduledStationNameCodeSequence ScheduledStudyLocation ScheduledStudyLocationAETitle SecondaryCaptureDeviceID "
    "SeriesDate SeriesDescription SeriesTime ServiceEpisodeDescription ServiceEpisodeID SmokingStatus SpecialNeeds "
    "StationName StudyComments StudyDescription StudyIDIssuer TextComments TextString TimeOfLastCalibration "
    "TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject TopicTitle VerifyingOrganization VisitComments"
).split()
_Z = (
    "AccessionNumber AcquisitionDate AcquisitionTime ContentCreatorName ContentDate ContentTime "
    "FillerOrderNumberImagingServiceRequest PatientBirthDate PatientID PatientName PatientSex "
    "PlacerOrderNumberImagingServiceRequest ReferringPhysicianName StudyDate StudyID StudyTime "
    "VerifyingObserverIdentificationCodeSequence"
).split()
_D = "GraphicAnnotationSequence PersonIdentificationCodeSequence PersonName VerifyingObserverName VerifyingObserverSequence".split()
_U = (
    "ConcatenationUID ContextGroupExtensionCreatorUID CreatorVersionUID DeviceUID DimensionOrganizationUID "
    "DoseReferenceUID FailedSOPInstanceUIDList FiducialUID FrameOfReferenceUID InstanceCreatorUID "
    "IrradiationEventUID LargePaletteColorLookupTableUID MediaStorageSOPInstanceUID ReferencedFrameOfReferenceUID "
    "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID ReferencedSOPInstanceUID "
    "ReferencedSOPInstanceUIDInFile RelatedFrameOfReferenceUID RequestedSOPInstanceUID SeriesInstanceUID "
    "SOPInstanceUID StorageMediaFileSetUID StudyInstanceUID SynchronizationFrameOfReferenceUID "
    "TemplateExtensionCreatorUID TemplateExtensionOrganizationUID TransactionUID UID"
).split()

#: Keyword -> action code (``X``, ``Z``, ``D``, ``U``) of every attribute the basic profile
#: de-identifies (DICOM PS3.15 Table E.1-1).
BASIC_PROFILE: dict[str, str] = {
    **{k: "X" for k in _X}, **{k: "Z" for k in _Z}, **{k: "D" for k in _D}, **{k: "U" for k in _U},
}

_UID_NAME = re.compile(r"^\d+(\.\d+){3,}$")
_UID_ROOT = "2.25."


def is_uid_like(name: str) -> bool:
    """Whether a file name (suffix ignored) is a DICOM UID, e.g. ``1.2.840.113619.2.55.3.6.dcm``."""
    stem = pathlib.PurePath(str(name)).name
    for suffix in (".dcm", ".dicom", ".ima", ".gz", ".nii", ".npy", ".npz"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return bool(_UID_NAME.match(stem)) and len(stem) <= 64


#: Header flags (Type 3, CS ``YES`` / ``NO``) saying the pixels themselves identify the patient:
#: text burned into the image (an ultrasound's or a screen capture's name banner) or a face that
#: can be recognised. PS3.15 E.1.1: such pixels leave only once cleaned (the Clean Pixel Data
#: option, which medlens does not implement), so a report shows them only when asked.
PIXEL_IDENTITY_FLAGS: tuple[str, ...] = ("BurnedInAnnotation", "RecognizableVisualFeatures")


def pixel_identity_flags(metadata: Any) -> list[str]:
    """The :data:`PIXEL_IDENTITY_FLAGS` a header (``{keyword: text}``) sets to ``YES``."""
    return [k for k in PIXEL_IDENTITY_FLAGS if str(metadata.get(k, "")).strip().upper() == "YES"]


def _well_known_uid(value: str) -> bool:
    from pydicom.uid import UID_dictionary

    return str(value) in UID_dictionary


def _text(value: Any) -> str:
    from pydicom.multival import MultiValue
    from pydicom.sequence import Sequence

    if isinstance(value, Sequence):
        return f"<sequence of {len(value)} item(s)>"
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(_text(v) for v in value)
    if isinstance(value, bytes):
        text = value.decode("latin-1", errors="replace")
        if any(not 32 <= b < 127 for b in value.rstrip(b"\x00 ")):  # binary (private data): its ASCII characters only
            shown = "".join(chr(b) if 32 <= b < 127 else "." for b in value[:80])
            return f"<{len(value)} bytes: {shown}{'...' if len(value) > 80 else ''}>"
        return text.rstrip("\x00 ")
    return "".join(c if c.isprintable() or c in "\t\n" else " " for c in str(value))


def _is_identifying(elem: Any) -> bool:
    if elem.tag.is_private:
        return True
    if elem.keyword in BASIC_PROFILE:
        return True
    if elem.VR == "UI":
        if elem.keyword.endswith("ClassUID") or elem.keyword == "TransferSyntaxUID":
            return False  # kinds of objects and software, never a patient or a study
        values = elem.value if isinstance(elem.value, (list, tuple)) or type(elem.value).__name__ == "MultiValue" else [elem.value]
        return any(v and not _well_known_uid(v) for v in values)
    if elem.VR == "PN":  # any person name, listed in the profile or not
        return True
    return False


def _name(elem: Any, prefix: str) -> str:
    base = elem.keyword or f"private ({elem.tag.group:04X},{elem.tag.element:04X})"
    return f"{prefix}{base}"


def identifying_elements(ds: Any) -> dict[str, str]:
    """Every identifying element of a pydicom dataset, as ``{keyword path: value text}``.

    Walks the file meta information, the data set and every item of every sequence (an
    identifying sequence is reported with its item count and its contents are walked too).
    Identifying: listed in :data:`BASIC_PROFILE`, private, a person name (VR PN), or a UID that
    is not a well-known DICOM UID. Empty elements are skipped.

    Parameters
    ----------
    ds : pydicom.Dataset

    Returns
    -------
    dict
        ``{"PatientName": "Doe^Jane", "ReferencedImageSequence[0].ReferencedSOPInstanceUID": ...}``
    """
    found: dict[str, str] = {}

    def walk(dataset: Any, prefix: str) -> None:
        for elem in dataset:
            if elem.VR == "SQ":
                if _is_identifying(elem) and len(elem.value):
                    found[_name(elem, prefix)] = _text(elem.value)
                for i, item in enumerate(elem.value):
                    walk(item, f"{_name(elem, prefix)}[{i}].")
                continue
            if elem.value is None or elem.value == "" or elem.value == b"":
                continue
            if _is_identifying(elem):
                found[_name(elem, prefix)] = _text(elem.value)

    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        walk(meta, "")
    walk(ds, "")
    return found


@dataclass(frozen=True)
class DicomIdentity:
    """What a DICOM header says, split into the shareable and the identifying.

    Attributes
    ----------
    metadata : dict of str to str
        Non-identifying acquisition information from ``keywords`` (modality, body part,
        geometry), with every element of :data:`BASIC_PROFILE` left out.
    identifiers : dict of str to str
        :func:`identifying_elements` of the header (values as text, unescaped).
    file_name_is_uid : bool
        The file (or folder) name is a UID, hence an identifier too.
    """

    metadata: dict[str, str] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)
    file_name_is_uid: bool = False


#: Header elements a report may show: they describe the acquisition, not the patient.
SHAREABLE_KEYWORDS: tuple[str, ...] = (
    "Modality", "BodyPartExamined", "ImageType", "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength",
    "KVP", "ConvolutionKernel", "RepetitionTime", "EchoTime", "SliceThickness", "SpacingBetweenSlices",
    "PixelSpacing", "Rows", "Columns", "NumberOfFrames", "PhotometricInterpretation", "BitsStored",
    "WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept", *PIXEL_IDENTITY_FLAGS,
)


def read_identity(path: PathLike) -> DicomIdentity:
    """Read the header of a DICOM file (or of the first DICOM file of a folder) and split it.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM file or a folder of one series.

    Raises
    ------
    FileFormatError
        The path does not exist or holds no readable DICOM file.
    """
    from medlens.data.formats.dicom_limits import read_header

    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileFormatError(f"DICOM file or folder not found: {p}")
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    for f in files:
        try:
            ds = read_header(f)  # a deflated file: its first bytes only
        except Exception:  # noqa: BLE001 - not DICOM: try the next file of the folder
            continue
        identifiers = identifying_elements(ds)
        metadata = {
            k: _text(ds[k].value) for k in SHAREABLE_KEYWORDS
            if k in ds and k not in BASIC_PROFILE and ds[k].value not in (None, "")
        }
        uid_name = is_uid_like(p.name) or is_uid_like(f.name)
        return DicomIdentity(metadata, identifiers, uid_name)
    raise FileFormatError(f"{p} holds no readable DICOM file")


def _new_uid(old: str, salt: str) -> str:
    """A UID under the ``2.25`` root (UUID-derived, PS3.5 B.2) determined by ``old`` and ``salt``."""
    digest = hashlib.sha256(f"{salt}\0{old}".encode()).digest()[:16]
    return _UID_ROOT + str(int.from_bytes(digest, "big"))


_DUMMY = {
    "PN": "ANONYMOUS", "LO": "ANONYMOUS", "SH": "ANON", "LT": "ANONYMOUS", "ST": "ANONYMOUS", "UT": "ANONYMOUS",
    "CS": "ANON", "DA": "19000101", "TM": "000000.00", "DT": "19000101000000.00", "AS": "000Y", "IS": "0",
    "DS": "0", "UI": "2.25.0", "AE": "ANON",
}


def deidentify(ds: Any, *, salt: str = "medlens") -> Any:
    """A de-identified copy of a pydicom dataset (the basic profile; the input is untouched).

    Parameters
    ----------
    ds : pydicom.Dataset
    salt : str
        Mixed into the new UIDs: the same ``(old UID, salt)`` always gives the same new UID,
        so the files of one series or study still belong together; another salt unlinks them.

    Returns
    -------
    pydicom.Dataset
        ``X`` elements and private elements removed, ``Z`` emptied, ``D`` set to a dummy value
        of their VR, ``U`` and every other non-well-known UID replaced, recursively in
        sequences; ``PatientIdentityRemoved`` = ``YES`` and ``DeidentificationMethod`` name
        the profile (PS3.15 E.1.1).
    """
    import copy

    from pydicom.sequence import Sequence

    out = copy.deepcopy(ds)

    def clean(dataset: Any) -> None:
        dataset.remove_private_tags()
        for elem in list(dataset):
            action = BASIC_PROFILE.get(elem.keyword)
            if action == "X":
                del dataset[elem.tag]
                continue
            if elem.VR == "SQ":
                if action == "Z":
                    elem.value = Sequence([])
                else:
                    for item in elem.value:
                        clean(item)
                continue
            if action == "Z":
                elem.value = "" if elem.VR not in ("US", "SS", "UL", "SL", "FL", "FD") else None
            elif action == "D":
                elem.value = _DUMMY.get(elem.VR, "")
            elif elem.VR == "UI" and elem.value:
                values = list(elem.value) if type(elem.value).__name__ == "MultiValue" else [elem.value]
                new = [v if _well_known_uid(v) else _new_uid(str(v), salt) for v in values]
                elem.value = new if len(new) > 1 else new[0]
            elif elem.VR == "PN" and elem.value:
                elem.value = _DUMMY["PN"]

    meta = getattr(out, "file_meta", None)
    if meta is not None:
        clean(meta)
    clean(out)
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = "DICOM PS3.15 E.1 basic profile (medlens)"
    return out
