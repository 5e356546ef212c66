"""Known-answer tests from published card data: real certificates, not made by this project.

Source: the test vectors of lumag/emv-tools (test/sda-test.c, test/dda-test.c,
test/cda-test.c), dumps of two cards:

- a Mastercard M/Chip test card under the Mastercard TEST CA key index 05
  (that key is in capk.json): issuer and ICC certificates, a DDA signature
  over the DDOL data 00000000, and a CDA signature in a GENERATE AC answer
  (CID 40, ATC 0010, 9F10) over the CDOL1 data given there and the
  unpredictable number 12345779;
- a Visa card under the Visa CA key index 01 (1024 bits, withdrawn in 2009):
  issuer certificate and Signed Static Application Data.

Every check passing here (hash results over the card's own static data,
PAN match, CDA transaction data hash code) is evidence from outside this
project that the recovery and the hashed layouts follow Book 2.
"""

from __future__ import annotations

from datetime import date

import pytest

from firmware.emv import oda
from firmware.emv.capk import CapkStore, CaPublicKey, Revocation, load_capk_store
from firmware.emv.certificates import Check, Stage
from firmware.emv.tvr import Tsi, TsiBit, Tvr, TvrBit
from firmware.errors import StatusWordError


def unhex(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


MC_RID = unhex("A000000004")
MC_AID = unhex("A0000000041010")
MC_PAN = unhex("5285881254345653")
MC_ISSUER_CERT = unhex(
    "1714284F763B8586EE6D319951F7E63FA25076E50DC9D3200BA998D3A052ADBA9AB69AC6AD6ADD3CE09F0278F4074EC4",
    "EE9B1D2268A3E953575E454E50CD860BF424C51C597712D2AA057089DD8673E51B1E1D7188034892077AC18A6AE23488",
    "BEA9DF3B1A83F2C0800CD7C5CDF2FDE0496F7BC39FB4BF363299BFA637B2EC33C507E36821EEC2075F0E420D38A1C9F3",
    "127261BA316C987674FADB20EA7FEB75EE455D12146EA6F02E8B01EC2FA7A115",
)
MC_ISSUER_REMAINDER = unhex("6E63B7BC70ABDD09341B34C03286BA9BD83BA7936C5B7798FB22C5E53FF240A26DBD6415")
MC_ICC_CERT = unhex(
    "A42FBEB156B98DCB0554DA062ADCA5309A91F04FA2C7BD7102A8D73F16A3CFADE8AADF4F3FE2A2125CCDD77C6B9F78B5",
    "B4371CE0805725B0F9C027AF147D91E1FFDB201E9C170CE777053A172AD526DCAFD33895E1A947305C5B167F2E7C6F99",
    "1581A652EE473154760C2ED774214E50DFECDD4CF294C974B89EBCA25B5AB3C0BEB50DFAF782AFDE1433D90CA2A89D65",
    "1E75D67EBC7C3E36F5A165EE6132612939C1ECD399E46074B996D93A88E01E0A",
)
# The card's static data to be authenticated: one record's contents (it lists 9F4A = 82) then AIP 3900.
MC_RECORD_CONTENT = unhex(
    "5F25031405015F24031506305A0852858812543456535F3401018E0C00000000000000001E031F039F0702FF009F0D05",
    "BC50BC00009F0E0500000000009F0F05BC70BC98009F4A01825F280206438C219F02069F03069F1A0295055F2A029A03",
    "9C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C08",
)
MC_AIP = unhex("3900")
MC_DDA_SIGNATURE = unhex(
    "3D87F31056102D2512CFDE30900627C1263A76D1DAA821F50831E606C54544C258131EAEBE874DCB1A28CF82D3FF9111",
    "8260BC91113711D3B289FA41BE69C7A7B5C783E6F8F97FCE13F08B13FA44183E3718CEBF0C41473D2B0FF4DE44B6A02D",
    "75ADB6D4962393FFDF4E69026CDF38FF",
)
MC_CDA_SIGNATURE = unhex(
    "1C009FC48679157DBFF45F65D33FF78D4FCBF0CF5EA4208D107AE95AA38C546D0E5A18B87403A12BD447A8BBFC1E49CE",
    "0B2E251389205703C9BB1A88CC79F1DDC2F9841EADF07CE07B62511DDC93DF59F28F0E91F92332D29CDEF2BCCB100885",
    "0500EF3E470A4CB18CD91AA5C1A108F3",
)
MC_CDOL1_DATA = unhex(
    "000000000000000000000000064300000000000643140925501234577923000000000000000000001E0300"
)
MC_CDA_UN = unhex("12345779")
MC_CDA_IAD = unhex("0010904001220000000000000000000000FF")

VISA01 = CaPublicKey(
    rid=unhex("A000000003"),
    index=0x01,
    modulus=unhex(
        "C696034213D7D8546984579D1D0F0EA519CFF8DEFFC429354CF3A871A6F7183F1228DA5C7470C055387100CB935A712C",
        "4E2864DF5D64BA93FE7E63E71F25B1E5F5298575EBE1C63AA617706917911DC2A75AC28B251C7EF40F2365912490B939",
        "BCA2124A30A28F54402C34AECA331AB67E1E79B285DD5771B5D9FF79EA630B75",
    ),
    exponent=b"\x03",
    expiry=date(2009, 12, 31),
    checksum=unhex("D34A6A776011C7E7CE3AEC5F03AD2F8CFC5503CC"),
)
VISA_ISSUER_CERT = unhex(
    "3C5FEAD4DD7BCA44F93E90C44F76EDE54A3288ECDC78469FCB1225C03B2C04F2C2F412281A0822DF14649230989FB149",
    "4070DAF8C9534A7881960148616ACE581788120D3506ACE4CEE564FB27EE53341C22F0B45B31873D05DE545EFE33BCD2",
    "9B2185D035A806AD08C6976F3505A19999930CA8A03EFA321C486061F7DCEC9F",
)
VISA_ISSUER_REMAINDER = unhex("1EBCA30F00CE5962A8C6E130544B82891B236C65DE29317F364735DEE63F6598975835D5")
VISA_SSAD = unhex(
    "99A558B62B674AA5E7D2A57E5EF6A6F2258E5DA052D05B54E5C115FF1CECF94AA2DF8F39A01D71C619EB819DA52EF381",
    "E84979586AEA7855FFBEF40AA3A71CD3B04CFDF270AEC8158A2797F24FD613B748134661135CD290E45B04A8E0CCC711",
    "AE042F159E73C89C2A7E65A4C2FD1D6106024AA27130B0ECEC0238F91659DE96",
)
VISA_RECORD_CONTENT = unhex(
    "5F24030812315A0842765500132345995F3401019F0702FF009F0D05D040ACA8009F0E0500100000009F0F05D068BCF8",
    "00",
)
VISA_AIP = unhex("5C00")

MC_DAY = date(2014, 9, 25)  # the transaction date in the CDOL1 data (9A = 140925)
AFL_ONE_RECORD = unhex("08010101")


def record(content: bytes) -> bytes:
    assert len(content) < 0x80
    return bytes([0x70, len(content)]) + content


def mc_static_data() -> oda.StaticData:
    return oda.build_static_data(AFL_ONE_RECORD, {(1, 1): record(MC_RECORD_CONTENT)}, MC_AIP, b"\x82")


def mc_card_data() -> dict[int, bytes]:
    return {
        0x4F: MC_AID,
        0x5A: MC_PAN,
        0x82: MC_AIP,
        0x8F: b"\x05",
        0x90: MC_ISSUER_CERT,
        0x92: MC_ISSUER_REMAINDER,
        0x9F32: b"\x03",
        0x9F46: MC_ICC_CERT,
        0x9F47: b"\x03",
        0x9F49: unhex("9F3704"),
    }


class Answer:
    """Stands in for INTERNAL AUTHENTICATE: records the DDOL data, returns a fixed response."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.sent: list[bytes] = []

    def __call__(self, ddol_data: bytes) -> bytes:
        self.sent.append(ddol_data)
        return self.response


def answer(response: bytes) -> Answer:
    return Answer(response)


def gen_ac_response(cid: int = 0x40, atc: bytes = b"\x00\x10", signature: bytes = MC_CDA_SIGNATURE) -> bytes:
    body = (
        unhex("9F2701")
        + bytes([cid])
        + unhex("9F3602")
        + atc
        + unhex("9F4B81")
        + bytes([len(signature)])
        + signature
        + unhex("9F1012")
        + MC_CDA_IAD
    )
    return bytes([0x77, 0x81, len(body)]) + body


@pytest.fixture(scope="module")
def capks() -> CapkStore:
    return load_capk_store()


def test_method_selection_for_these_cards() -> None:
    terminal = unhex("E0F8C8")  # SDA, DDA and CDA
    assert oda.select_method(MC_AIP, terminal) is oda.OdaMethod.CDA
    assert oda.select_method(VISA_AIP, terminal) is oda.OdaMethod.SDA


def test_mastercard_static_data_is_record_then_aip() -> None:
    static = mc_static_data()
    assert static.failure is None
    assert static.data == MC_RECORD_CONTENT + MC_AIP


def test_mastercard_dda_passes_with_real_certificates(capks: CapkStore) -> None:
    tvr, tsi = Tvr(), Tsi()
    card = answer(bytes([0x80, len(MC_DDA_SIGNATURE)]) + MC_DDA_SIGNATURE)
    result = oda.perform_dda(
        capks, mc_card_data(), mc_static_data(), card, {0x9F37: bytes(4)}, tvr, MC_DAY, tsi=tsi
    )
    assert result.failure is None, str(result.failure)
    assert card.sent == [bytes(4)]
    assert tvr.to_bytes() == bytes(5)
    assert TsiBit.OFFLINE_DATA_AUTH_PERFORMED in tsi
    assert result.issuer_key is not None and result.icc_key is not None
    # What the issuer certificate certifies: issuer identifier 528588, expiry 12/21, serial 006EE2.
    assert result.issuer_key.owner == unhex("528588FF")
    assert result.issuer_key.expiry == date(2021, 12, 31)
    assert result.issuer_key.serial == unhex("006EE2")
    assert result.issuer_key.length == 0xB0
    assert result.issuer_key.modulus.endswith(MC_ISSUER_REMAINDER)
    # The ICC certificate certifies the PAN, expiry 06/15, and a 112-byte key without remainder.
    assert result.icc_key.owner == MC_PAN + b"\xff\xff"
    assert result.icc_key.expiry == date(2015, 6, 30)
    assert result.icc_key.length == 0x70
    assert len(result.data_objects[0x9F4C]) == 8


def test_mastercard_dda_fails_on_other_dynamic_data(capks: CapkStore) -> None:
    tvr = Tvr()
    card = answer(bytes([0x80, len(MC_DDA_SIGNATURE)]) + MC_DDA_SIGNATURE)
    result = oda.perform_dda(
        capks, mc_card_data(), mc_static_data(), card, {0x9F37: b"\x00\x00\x00\x01"}, tvr, MC_DAY
    )
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.SIGNED_DYNAMIC_DATA, Check.HASH)
    assert tvr.to_bytes() == TvrBit.DDA_FAILED.to_bytes(5, "big")


def test_mastercard_cda_passes_with_real_signature(capks: CapkStore) -> None:
    tvr = Tvr()
    prepared = oda.prepare_cda(capks, mc_card_data(), mc_static_data(), tvr, MC_DAY)
    assert prepared.ok and prepared.icc_key is not None
    result = oda.verify_cda(prepared.icc_key, gen_ac_response(), b"", MC_CDOL1_DATA, MC_CDA_UN, tvr=tvr)
    assert result, str(result.failure)
    assert result.cryptogram_information_data == 0x40
    assert len(result.application_cryptogram) == 8
    assert result.data_objects[0x9F27] == b"\x40"
    assert result.data_objects[0x9F26] == result.application_cryptogram
    assert tvr.to_bytes() == bytes(5)


@pytest.mark.parametrize(
    ("response", "cdol", "un", "expected"),
    [
        (
            gen_ac_response(atc=b"\x00\x11"),
            MC_CDOL1_DATA,
            MC_CDA_UN,
            (Stage.GENERATE_AC, Check.TRANSACTION_DATA_HASH),
        ),
        (
            gen_ac_response(),
            MC_CDOL1_DATA[:-1] + b"\x01",
            MC_CDA_UN,
            (Stage.GENERATE_AC, Check.TRANSACTION_DATA_HASH),
        ),
        (gen_ac_response(), MC_CDOL1_DATA, unhex("12345778"), (Stage.SIGNED_DYNAMIC_DATA, Check.HASH)),
        (
            gen_ac_response(cid=0x80),
            MC_CDOL1_DATA,
            MC_CDA_UN,
            (Stage.GENERATE_AC, Check.CRYPTOGRAM_INFORMATION),
        ),
    ],
    ids=["atc-changed", "cdol-data-changed", "other-unpredictable-number", "cid-changed"],
)
def test_mastercard_cda_detects_changes(
    capks: CapkStore, response: bytes, cdol: bytes, un: bytes, expected: tuple[Stage, Check]
) -> None:
    prepared = oda.prepare_cda(capks, mc_card_data(), mc_static_data(), Tvr(), MC_DAY)
    assert prepared.icc_key is not None
    tvr = Tvr()
    result = oda.verify_cda(prepared.icc_key, response, b"", cdol, un, tvr=tvr)
    assert not result
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == expected
    assert tvr.to_bytes() == TvrBit.CDA_FAILED.to_bytes(5, "big")


@pytest.mark.parametrize(
    ("day", "change", "expected"),
    [
        (date(2022, 1, 1), {}, (Stage.ISSUER_CERTIFICATE, Check.EXPIRED)),
        (date(2015, 7, 1), {}, (Stage.ICC_CERTIFICATE, Check.EXPIRED)),
        (MC_DAY, {0x5A: unhex("5385881254345653")}, (Stage.ISSUER_CERTIFICATE, Check.ISSUER_IDENTIFIER)),
        (MC_DAY, {0x5A: unhex("5285881254345654")}, (Stage.ICC_CERTIFICATE, Check.PAN)),
        (MC_DAY, {0x8F: b"\x06"}, (Stage.CA_KEY, Check.NOT_HELD)),
        (MC_DAY, {0x92: MC_ISSUER_REMAINDER[:-1] + b"\x00"}, (Stage.ISSUER_CERTIFICATE, Check.HASH)),
    ],
    ids=["issuer-expired", "icc-expired", "issuer-id", "icc-pan", "ca-index", "remainder"],
)
def test_mastercard_certificate_checks_fail_as_the_book_says(
    capks: CapkStore, day: date, change: dict[int, bytes], expected: tuple[Stage, Check]
) -> None:
    tvr = Tvr()
    card = answer(bytes([0x80, len(MC_DDA_SIGNATURE)]) + MC_DDA_SIGNATURE)
    result = oda.perform_dda(
        capks, mc_card_data() | change, mc_static_data(), card, {0x9F37: bytes(4)}, tvr, day
    )
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == expected
    assert card.sent == []
    assert tvr.to_bytes() == TvrBit.DDA_FAILED.to_bytes(5, "big")


def test_mastercard_revoked_issuer_certificate(capks: CapkStore) -> None:
    revoking = CapkStore.of(capks.keys.values(), [Revocation(MC_RID, 0x05, unhex("006EE2"))])
    tvr = Tvr()
    result = oda.prepare_cda(revoking, mc_card_data(), mc_static_data(), tvr, MC_DAY)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.ISSUER_CERTIFICATE, Check.REVOKED)
    assert tvr.to_bytes() == TvrBit.CDA_FAILED.to_bytes(5, "big")


def test_mastercard_tampered_record_fails_icc_certificate(capks: CapkStore) -> None:
    content = bytearray(MC_RECORD_CONTENT)
    content[-1] ^= 0x01
    static = oda.build_static_data(AFL_ONE_RECORD, {(1, 1): record(bytes(content))}, MC_AIP, b"\x82")
    tvr = Tvr()
    result = oda.prepare_cda(capks, mc_card_data(), static, tvr, MC_DAY)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.ICC_CERTIFICATE, Check.HASH)
    assert tvr.to_bytes() == TvrBit.CDA_FAILED.to_bytes(5, "big")


def test_status_word_from_internal_authenticate_is_a_dda_failure(capks: CapkStore) -> None:
    def refuses(ddol_data: bytes) -> bytes:
        raise StatusWordError("INTERNAL AUTHENTICATE", 0x6985)

    tvr = Tvr()
    result = oda.perform_dda(
        capks, mc_card_data(), mc_static_data(), refuses, {0x9F37: bytes(4)}, tvr, MC_DAY
    )
    assert result.failure is not None
    assert result.failure.check is Check.STATUS_WORD
    assert TvrBit.DDA_FAILED in tvr


def visa_card_data() -> dict[int, bytes]:
    return {
        0x4F: unhex("A0000000031010"),
        0x5A: unhex("4276550013234599"),
        0x8F: b"\x01",
        0x90: VISA_ISSUER_CERT,
        0x92: VISA_ISSUER_REMAINDER,
        0x9F32: b"\x03",
        0x93: VISA_SSAD,
    }


VISA_DAY = date(2008, 6, 1)


def test_visa_sda_passes_with_real_signed_static_data() -> None:
    store = CapkStore.of([VISA01])
    static = oda.build_static_data(AFL_ONE_RECORD, {(1, 1): record(VISA_RECORD_CONTENT)}, VISA_AIP, b"\x82")
    tvr, tsi = Tvr(), Tsi()
    result = oda.perform_sda(store, visa_card_data(), static, tvr, VISA_DAY, tsi=tsi)
    assert result.failure is None, str(result.failure)
    assert result.data_objects == {0x9F45: b"\x31\x32"}
    assert result.issuer_key is not None
    assert result.issuer_key.owner == unhex("427655FF")
    assert result.issuer_key.expiry == date(2009, 12, 31)
    assert tvr.to_bytes() == TvrBit.SDA_SELECTED.to_bytes(5, "big")
    assert TsiBit.OFFLINE_DATA_AUTH_PERFORMED in tsi


def test_visa_sda_fails_on_tampered_record_byte() -> None:
    store = CapkStore.of([VISA01])
    content = bytearray(VISA_RECORD_CONTENT)
    content[10] ^= 0x10  # a PAN digit
    static = oda.build_static_data(AFL_ONE_RECORD, {(1, 1): record(bytes(content))}, VISA_AIP, b"\x82")
    tvr = Tvr()
    result = oda.perform_sda(store, visa_card_data(), static, tvr, VISA_DAY)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.SIGNED_STATIC_DATA, Check.HASH)
    assert tvr.to_bytes() == (TvrBit.SDA_FAILED | TvrBit.SDA_SELECTED).to_bytes(5, "big")


def test_visa_sda_with_the_ca_key_withdrawn() -> None:
    tvr = Tvr()
    static = oda.build_static_data(AFL_ONE_RECORD, {(1, 1): record(VISA_RECORD_CONTENT)}, VISA_AIP, b"\x82")
    result = oda.perform_sda(CapkStore.of([VISA01]), visa_card_data(), static, tvr, date(2010, 1, 1))
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.CA_KEY, Check.NOT_HELD)
    assert tvr.to_bytes() == (TvrBit.SDA_FAILED | TvrBit.SDA_SELECTED).to_bytes(5, "big")
