"""Drug catalogue, allergy store, prescriptions and their lines, sandbox CA certificates.

Clinical free text (diagnosis, chronic reason, notes, reject reason, allergens) is
stored encrypted with ``hub.crypto`` bound to its column, as accounts does for
identifiers. Money is integer fen. Times are UTC; business days are Asia/Shanghai."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Patient
from hub import crypto


def _enc(value: str, context: str) -> str:
    return crypto.encrypt(value, context=context) if value else ""


def _dec(token: str, context: str) -> str:
    return crypto.decrypt(token, context=context) if token else ""


class Frequency(models.Model):
    """用药频次 vocabulary (data, seeded from ``data/vocabularies.json``)."""

    code = models.CharField(max_length=16, unique=True)  # "tid"
    label = models.CharField(max_length=32)  # "每日三次"
    # Doses per period of days: tid = 3 per 1 day, qod = 1 per 2 days; 0 = as needed (prn).
    doses_per_period = models.PositiveSmallIntegerField()
    period_days = models.PositiveSmallIntegerField(default=1)
    sort = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.label} ({self.code})"


class Route(models.Model):
    """给药途径 vocabulary (data)."""

    code = models.CharField(max_length=16, unique=True)  # "po"
    label = models.CharField(max_length=32)  # "口服"
    sort = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.label} ({self.code})"


class Drug(models.Model):
    """One catalogue item: a drug or a product a prescription may name."""

    class Category(models.TextChoices):
        WESTERN = "western", "西药"
        PATENT = "patent", "中成药"
        DECOCTION = "decoction", "中药饮片"
        FSMP = "fsmp", "特医食品"
        TEA = "tea", "茶包制剂"

    class Controlled(models.TextChoices):
        NONE = "none", "非特殊管理药品"
        NARCOTIC = "narcotic", "麻醉药品"
        PSYCHOTROPIC_1 = "psychotropic_1", "第一类精神药品"
        PSYCHOTROPIC_2 = "psychotropic_2", "第二类精神药品"
        TOXIC = "toxic", "医疗用毒性药品"
        RADIOACTIVE = "radioactive", "放射性药品"
        PRECURSOR = "precursor", "药品类易制毒化学品"

    class TeaClass(models.TextChoices):
        NONE = "", "不适用"
        DECOCTION_TEA = "decoction_tea", "饮片代茶饮"  # a drug prescription, with the decoction pieces
        HOSPITAL_PREPARATION = "hospital_preparation", "医院制剂"  # prescription, in-hospital only
        FOOD = "food", "药食同源食品"  # sold without prescription

    class FsmpClass(models.TextChoices):
        NONE = "", "不适用"
        COMPLETE = "complete", "全营养配方食品"
        DISEASE_SPECIFIC = "disease_specific", "特定全营养配方食品"  # never sold online (rules.md)
        INCOMPLETE = "incomplete", "非全营养配方食品"

    code = models.CharField(max_length=32, unique=True)  # stable catalogue code (HIS code)
    name = models.CharField(max_length=128)  # trade / product name
    generic_name = models.CharField(max_length=128)
    category = models.CharField(max_length=16, choices=Category.choices)
    dosage_form = models.CharField(max_length=32)  # 片剂, 胶囊剂, 颗粒剂, 饮片, 粉剂, 袋泡茶
    specification = models.CharField(max_length=64)  # 0.25g*24粒
    unit = models.CharField(max_length=16)  # the dispensing unit: 盒, 瓶, g, 袋
    dose_unit = models.CharField(max_length=16)  # the unit of one dose: g, mg, 粒, 片, ml
    # How many dose units one dispensing unit holds (24 粒 per 盒 = 24 when dose_unit is 粒);
    # None: the quantity is not checked against the days (e.g. a cream).
    pack_dose = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    default_frequency = models.ForeignKey(Frequency, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    default_route = models.ForeignKey(Route, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    controlled_class = models.CharField(max_length=16, choices=Controlled.choices, default=Controlled.NONE)
    tea_class = models.CharField(max_length=24, choices=TeaClass.choices, default="", blank=True)
    fsmp_class = models.CharField(max_length=24, choices=FsmpClass.choices, default="", blank=True)
    # Names an allergy record may carry for this drug (drug class, ingredients): "青霉素类".
    allergen_groups = models.JSONField(default=list, blank=True)
    registration_no = models.CharField(max_length=64, blank=True)  # 国药准字 / 国食注字TY
    online_allowed = models.BooleanField(default=True)
    price_amount = models.PositiveIntegerField()  # fen per dispensing unit
    stock = models.IntegerField(null=True, blank=True)  # None: not tracked here
    is_active = models.BooleanField(default=True)

    class Meta:
        indexes = [models.Index(fields=["category", "is_active"])]

    def __str__(self) -> str:
        return f"{self.name} {self.specification}"

    @property
    def is_tcm_pieces(self) -> bool:
        """Goes on a TCM decoction-pieces prescription of its own (R8)."""
        return self.category == self.Category.DECOCTION or (
            self.category == self.Category.TEA and self.tea_class == self.TeaClass.DECOCTION_TEA
        )


class PatientAllergy(models.Model):
    """The allergy store: what the prescription check reads today (through the
    allergy source registry, ``allergies.py``) and what the care / health-record
    app will read and write later. One row per allergen and source."""

    class Source(models.TextChoices):
        HOSPITAL = "hospital", "医院记录"  # entered by clinical staff or imported from the HIS
        PATIENT_REPORTED = "patient_reported", "患者自述"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    allergen_enc = models.TextField()
    reaction_enc = models.TextField(blank=True)
    source = models.CharField(max_length=24, choices=Source.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "removed_at"])]

    @property
    def allergen(self) -> str:
        return _dec(self.allergen_enc, "pharmacy_allergy.allergen")

    @property
    def reaction(self) -> str:
        return _dec(self.reaction_enc, "pharmacy_allergy.reaction")

    def set_text(self, *, allergen: str, reaction: str) -> None:
        self.allergen_enc = _enc(allergen, "pharmacy_allergy.allergen")
        self.reaction_enc = _enc(reaction, "pharmacy_allergy.reaction")


class Prescription(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "草稿"  # the doctor is entering it; not signed
        SIGNED = "signed", "已签名"  # e-signed by the doctor, not yet sent to the pharmacist
        SUBMITTED = "submitted", "待药师审核"  # in the pharmacists' review queue
        APPROVED = "approved", "审核通过"  # in effect: may be paid (within validity)
        REJECTED = "rejected", "审核未通过"  # the pharmacist's reason goes back to the doctor
        REVISED = "revised", "医生修改中"  # the doctor reopened it; must sign and submit again
        PAID = "paid", "已支付"  # paid (commerce); may be dispensed
        DISPENSED = "dispensed", "已发药"  # the pharmacy dispensed it (delivery or pickup follows)
        REFUNDED = "refunded", "已退费"  # paid, then refunded before dispensing (commerce)
        EXPIRED = "expired", "已过期"  # past its validity before payment
        CANCELLED = "cancelled", "已作废"  # withdrawn by the doctor

    class Kind(models.TextChoices):
        WESTERN = "western", "西药/中成药处方"
        TCM = "tcm", "中药饮片处方"

    class GuardianRelation(models.TextChoices):
        NONE = "", "无"
        FATHER = "father", "父亲"
        MOTHER = "mother", "母亲"
        OTHER = "other", "其他监护人"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescriptions")
    # The treating doctor who enters, signs and answers for it (never software).
    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="prescriptions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WESTERN)
    version = models.PositiveIntegerField(default=1)  # +1 on every revision after rejection
    diagnosis_enc = models.TextField()
    icd10_code = models.CharField(max_length=16, blank=True)
    chronic_reason_enc = models.TextField(blank=True)  # a 长期处方: days above the normal limit
    valid_days = models.PositiveSmallIntegerField(default=1)  # 1 = the day issued; up to 3
    guardian_name = models.CharField(max_length=64, blank=True)
    guardian_relation = models.CharField(max_length=16, choices=GuardianRelation.choices, blank=True, default="")
    guardian_id_number_enc = models.TextField(blank=True)
    note_to_pharmacist_enc = models.TextField(blank=True)  # internal: never shown to the patient
    # Where it came from (a later domain app: consultation, tcm...), e.g. ("consultation", "17").
    source_type = models.CharField(max_length=32, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The signature over the canonical content (ca.py); cleared when the doctor reopens it.
    issued_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    content_digest = models.CharField(max_length=64, blank=True)  # integrity code: SHA-256 hex
    signature = models.TextField(blank=True)  # base64
    signature_algorithm = models.CharField(max_length=32, blank=True)
    cert_serial = models.CharField(max_length=64, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reject_reason_enc = models.TextField(blank=True)  # for the doctor, not the patient
    review_note_enc = models.TextField(blank=True)  # internal
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_ref = models.CharField(max_length=64, blank=True)  # the order that paid it (commerce)
    dispensed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dispensed_at = models.DateTimeField(null=True, blank=True)
    # How the patient wants it (chosen in the app before dispensing): the shipment is
    # created when the pharmacy dispenses. "" = not chosen (the pharmacist decides).
    delivery_method = models.CharField(
        max_length=8, blank=True, choices=[("courier", "快递到家"), ("pickup", "到院自取")]
    )
    delivery_address_id = models.BigIntegerField(null=True, blank=True)  # the account's delivery address
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason_enc = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "submitted_at"]),
            models.Index(fields=["doctor", "status"]),
            models.Index(fields=["patient", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"处方 {self.pk} ({self.status})"

    @property
    def number(self) -> str:
        return f"RX{self.pk:08d}"

    @property
    def diagnosis(self) -> str:
        return _dec(self.diagnosis_enc, "prescription.diagnosis")

    @property
    def chronic_reason(self) -> str:
        return _dec(self.chronic_reason_enc, "prescription.chronic_reason")

    @property
    def guardian_id_number(self) -> str:
        return _dec(self.guardian_id_number_enc, "prescription.guardian_id_number")

    @property
    def note_to_pharmacist(self) -> str:
        return _dec(self.note_to_pharmacist_enc, "prescription.note_to_pharmacist")

    @property
    def reject_reason(self) -> str:
        return _dec(self.reject_reason_enc, "prescription.reject_reason")

    @property
    def cancel_reason(self) -> str:
        return _dec(self.cancel_reason_enc, "prescription.cancel_reason")

    @property
    def review_note(self) -> str:
        return _dec(self.review_note_enc, "prescription.review_note")

    def set_clinical_text(
        self, *, diagnosis: str, chronic_reason: str, note_to_pharmacist: str, guardian_id_number: str
    ) -> None:
        self.diagnosis_enc = _enc(diagnosis, "prescription.diagnosis")
        self.chronic_reason_enc = _enc(chronic_reason, "prescription.chronic_reason")
        self.note_to_pharmacist_enc = _enc(note_to_pharmacist, "prescription.note_to_pharmacist")
        self.guardian_id_number_enc = _enc(guardian_id_number, "prescription.guardian_id_number")

    def set_review_text(self, *, reject_reason: str, review_note: str) -> None:
        self.reject_reason_enc = _enc(reject_reason, "prescription.reject_reason")
        self.review_note_enc = _enc(review_note, "prescription.review_note")


class PrescriptionLine(models.Model):
    """One drug of a prescription, as the doctor entered it (``entered_by``)."""

    prescription = models.ForeignKey(Prescription, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="+")
    # Snapshot of what the doctor saw, so a later catalogue edit does not change a prescription.
    drug_code = models.CharField(max_length=32)
    drug_name = models.CharField(max_length=128)
    specification = models.CharField(max_length=64)
    dose = models.DecimalField(max_digits=10, decimal_places=3)
    dose_unit = models.CharField(max_length=16)
    frequency = models.ForeignKey(Frequency, on_delete=models.PROTECT, related_name="+")
    route = models.ForeignKey(Route, on_delete=models.PROTECT, related_name="+")
    days = models.PositiveSmallIntegerField()
    quantity = models.DecimalField(max_digits=10, decimal_places=3)
    quantity_unit = models.CharField(max_length=16)
    instructions = models.CharField(max_length=100, blank=True)  # 饭后, 先煎, 后下
    unit_price_amount = models.PositiveIntegerField()  # fen, at the time entered
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prescription", "position"], name="uniq_rx_line_position")]
        ordering = ["position"]


class CaCertificate(models.Model):
    """A doctor's signing certificate in the sandbox CA (``ca.SandboxCaSigner``): a
    real X.509 certificate issued by the sandbox root, with its private key kept
    encrypted twice (PKCS#8 under the doctor's PIN, then ``hub.crypto``). A real CA
    keeps the key on its side; this table is the sandbox's."""

    doctor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    serial = models.CharField(max_length=64, unique=True)
    subject = models.CharField(max_length=200)
    certificate_pem = models.TextField()
    private_key_enc = models.TextField()
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=64, blank=True)
    pin_failures = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["doctor", "-not_after"])]


class SandboxCaRoot(models.Model):
    """The sandbox CA's own root key and certificate (one row, made on first use)."""

    certificate_pem = models.TextField()
    private_key_enc = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
