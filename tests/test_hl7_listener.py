"""The HL7 MLLP listener against the real server on port 0, with python-hl7's MLLP client as the peer."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hl7
import hl7.mllp
import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import BayConfig, Hl7MllpMonitor
from app.store.sqlite import SQLiteStore
from monitors.protocols import mllp
from tests.conftest import RunningServer, running_server, small_settings

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


def oru(
    control_id: str,
    *,
    device: str = "00A0C9FFFE123456",
    location: str = "ICU^ROOM7^1",
    hr: str = "72",
    spo2: str = "97",
    msg_type: str = "ORU^R01^ORU_R01",
    version: str = "2.6",
    extra: str = "",
    msh15_16: str = "",
) -> bytes:
    """A typical PCD-01 ORU^R01 (HR, SpO2, NIBP) written for these tests."""
    now = "20261125141038+0000"
    segs = [
        f"MSH|^~\\&|MONITOR^{device}^EUI-64|ICU|VIGIL|CLINIC|{now}||{msg_type}|{control_id}|P|{version}"
        f"|||{msh15_16}||||IHE PCD ORU-R01 2006^HL7^1.3.6.1.4.1.19376.1.6.1.1.1^ISO",
        "PID|||123456^^^HOSP^MR||Doe^Jane",
        f"PV1||I|{location}",
        f"OBR|1|||182777000^monitoring of patient^SCT|||{now}",
        f"OBX|1||69837^MDC_DEV_METRIC_VMD_MDS^MDC|1|||||||X|||||||{device}^^{device}^EUI-64",
        f"OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.147842|{hr}|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R|||{now}",
        f"OBX|3|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.150456|{spo2}|262688^MDC_DIM_PERCENT^MDC|||||R|||{now}",
        "OBX|4||150020^MDC_PRESS_BLD_NONINV^MDC|1.3.1|||||||X",
        f"OBX|5|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.3.1.150021|128|266016^MDC_DIM_MMHG^MDC|||||R|||{now}",
        f"OBX|6|NM|150022^MDC_PRESS_BLD_NONINV_DIA^MDC|1.3.1.150022|82|266016^MDC_DIM_MMHG^MDC|||||R|||{now}",
        f"OBX|7|NM|150023^MDC_PRESS_BLD_NONINV_MEAN^MDC|1.3.1.150023|97|266016^MDC_DIM_MMHG^MDC|||||R|||{now}",
    ]
    if extra:
        segs.append(extra)
    return ("\r".join(segs) + "\r").encode()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = small_settings(tmp_path, bays=1)
    settings = settings.model_copy(
        update={
            "bays": [*settings.bays, BayConfig(id="bay7", label="Bay 7")],
            "monitors": [*settings.monitors, Hl7MllpMonitor(name="hl7", port=0, max_frame_bytes=64 * 1024)],
            "locations": {"icu^room7^1": "bay7"},
        }
    )
    async with running_server(settings) as srv:
        yield srv


async def hl7_port(srv: RunningServer) -> int:
    adapter = srv.services.supervisor.adapters["hl7"]
    for _ in range(100):
        listening = adapter.describe().get("listening")
        if isinstance(listening, str):
            return int(listening.rsplit(":", 1)[1])
        await asyncio.sleep(0.02)
    raise AssertionError("HL7 listener did not start")


async def exchange(port: int, payloads: list[bytes], answers_each: int = 1) -> list[hl7.Message]:
    reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port)
    out: list[hl7.Message] = []
    try:
        for p in payloads:
            writer.writeblock(p)
            await writer.drain()
            for _ in range(answers_each):
                out.append(await asyncio.wait_for(reader.readmessage(), 5))
    finally:
        writer.close()
        await writer.wait_closed()
    return out


def msa(ack: hl7.Message) -> tuple[str, str]:
    seg = ack.segment("MSA")
    return str(seg[1]), str(seg[2])


def err_code(ack: hl7.Message) -> str:
    return str(ack.segment("ERR")[3][0][0])


async def test_good_message_gets_aa_only_after_it_is_stored(server: RunningServer) -> None:
    port = await hl7_port(server)
    [ack] = await exchange(port, [oru("MSG0001")])
    assert msa(ack) == ("AA", "MSG0001")
    assert str(ack.segment("MSH")[9]).startswith("ACK")
    # AA means durable: a fresh connection to the database sees the message and its readings right away.
    store = SQLiteStore(server.services.settings.db_path)
    await store.open()
    try:
        raws = await store.raw_messages(control_id="MSG0001")
        assert len(raws) == 1 and raws[0].outcome == "AA" and raws[0].payload == oru("MSG0001")
        readings = {r.reading.param: r for r in await store.readings(device_id="00A0C9FFFE123456")}
        assert {k: v.reading.value for k, v in readings.items()} == {
            "hr": 72,
            "spo2": 97,
            "nibp_sys": 128,
            "nibp_dia": 82,
            "nibp_mean": 97,
        }
        assert readings["nibp_sys"].bay == "bay7"  # routed by PV1-3 location
        assert readings["hr"].reading.t_device == datetime(2026, 11, 25, 14, 10, 38, tzinfo=UTC)
    finally:
        await store.close()


async def test_content_errors_get_ae_and_are_archived(server: RunningServer) -> None:
    port = await hl7_port(server)
    only_unknown = oru("MSG0002").split(b"OBX|2")[0] + b"OBX|2|NM|999999^MDC_MADE_UP^MDC|1.1.1.9|5|||||R\r"
    acks = await exchange(port, [only_unknown, oru("MSG0003", hr="abc", spo2="--")])
    assert [msa(a) for a in acks] == [("AE", "MSG0002"), ("AA", "MSG0003")]  # MSG0003 still has NIBP
    assert err_code(acks[0])
    await server.services.store.flush()
    archived = await server.services.store.raw_messages(control_id="MSG0002")
    assert archived and archived[0].outcome == "AE"
    async with httpx.AsyncClient(base_url=server.http) as http:
        monitors = (await http.get("/api/monitors")).json()
    stats = next(m for m in monitors if m["name"] == "hl7")["details"]["stats"]
    assert stats["unknown_observations"] >= 1 and "999999^MDC_MADE_UP^MDC" in json.dumps(stats["unknown_codes"])


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (oru("ADT01", msg_type="ADT^A01^ADT_A01"), "200"),
        (oru("OLD01", version="2.1"), "203"),
    ],
)
async def test_unsupported_messages_get_ar(server: RunningServer, payload: bytes, code: str) -> None:
    [ack] = await exchange(await hl7_port(server), [payload])
    assert msa(ack)[0] == "AR" and err_code(ack) == code


async def test_unparseable_and_oversize_frames_are_answered_and_connection_survives(server: RunningServer) -> None:
    port = await hl7_port(server)
    garbage = b"MSH|^~\\&|X|Y|Z|W|20261125||ORU^R01|GARB01|P|2.6\rOBX|this is not|valid\r\xff\xfe"
    oversize = oru("BIG01", extra="NTE|1||" + "x" * 70_000)
    acks = await exchange(port, [garbage, oversize, oru("AFTER01")])
    codes = [msa(a) for a in acks]
    assert codes[0][1] == "GARB01" and codes[0][0] in ("AE", "AR")
    assert codes[1] == ("AR", "BIG01")
    assert codes[2] == ("AA", "AFTER01")  # the same connection keeps working


async def test_enhanced_mode_gets_commit_ack(server: RunningServer) -> None:
    port = await hl7_port(server)
    [ack] = await exchange(port, [oru("ENH01", msh15_16="AL|NE")])
    assert msa(ack) == ("CA", "ENH01")
    acks = await exchange(port, [oru("ENH02", msh15_16="AL|AL")], answers_each=2)
    assert [msa(a)[0] for a in acks] == ["CA", "AA"]


async def test_junk_between_frames_and_split_reads(server: RunningServer) -> None:
    port = await hl7_port(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = b"junk before" + mllp.frame(oru("SPLIT01")) + b"\r\njunk" + mllp.frame(oru("SPLIT02"))
        for i in range(0, len(data), 7):  # dribble it in 7-byte pieces
            writer.write(data[i : i + 7])
            await writer.drain()
        got = b""
        while got.count(FS + CR) < 2:
            got += await asyncio.wait_for(reader.read(4096), 5)
        ids = [msa(hl7.parse(block.strip(VT).decode())) for block in got.split(FS + CR) if block]
        assert ids == [("AA", "SPLIT01"), ("AA", "SPLIT02")]
    finally:
        writer.close()


async def test_unbound_device_shows_as_unassigned(server: RunningServer) -> None:
    port = await hl7_port(server)
    async with websockets.connect(server.ws) as ws:
        await ws.send(json.dumps({"type": "subscribe", "bays": None, "waves": "none"}))
        [ack] = await exchange(port, [oru("LOST01", device="00A0C9FFFE999999", location="ELSEWHERE^1^1")])
        assert msa(ack) == ("AA", "LOST01")
        seen: dict[str, Any] = {}
        for _ in range(200):
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg["type"] == "vitals" and msg["device_id"] == "00A0C9FFFE999999":
                seen = msg
                break
        assert seen["bay"] == "unassigned"
    async with httpx.AsyncClient(base_url=server.http) as http:
        bays = (await http.get("/api/bays")).json()
    assert bays[-1]["bay"] == "unassigned" and bays[-1]["devices"][0]["device_id"] == "00A0C9FFFE999999"


async def test_allow_list_refuses_other_sources(tmp_path: Path) -> None:
    base = small_settings(tmp_path, bays=1)
    settings = base.model_copy(update={"monitors": [Hl7MllpMonitor(name="hl7", port=0, allow_from=["10.0.0.0/8"])]})
    async with running_server(settings) as srv:
        port = await hl7_port(srv)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(mllp.frame(oru("NOPE01")))
        try:
            answer = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # closed without an answer
        writer.close()
        assert srv.services.supervisor.adapters["hl7"].describe()["stats"]["refused_connections"] == 1  # type: ignore[index]


frames = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda b: mllp.frame(b.replace(VT, b"").replace(FS, b"")), st.binary(max_size=400)),
    st.builds(
        lambda cut, junk: mllp.frame(oru("FUZZ")[:cut] + junk.replace(VT, b"").replace(FS, b"")),
        st.integers(0, 600),
        st.binary(max_size=50),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(frames, min_size=1, max_size=5))
async def test_random_and_mutated_frames_never_crash_the_server(server: RunningServer, chunks: list[bytes]) -> None:
    port = await hl7_port(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = b"".join(chunks)
    writer.write(payload)
    await writer.drain()
    expected = sum(1 for c in chunks if c.startswith(VT))  # at most this many complete frames
    got = b""
    try:
        while got.count(FS + CR) < expected:
            more = await asyncio.wait_for(reader.read(65536), 1.5)
            if not more:
                break
            got += more
    except TimeoutError:
        pass  # frames merged or cut by the random bytes: fewer answers is fine, no answer to junk is fine
    finally:
        writer.close()
    for block in got.split(FS + CR):
        if block.strip():
            assert hl7.parse(block.lstrip(VT).decode("latin-1")).segment("MSA")  # every answer is a valid ACK
    # still alive and still answering properly
    [ack] = await exchange(port, [oru("ALIVE")])
    assert msa(ack) == ("AA", "ALIVE")


async def test_tls_listener_accepts_tls_clients(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not available to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    base = small_settings(tmp_path, bays=1)
    settings = base.model_copy(update={"monitors": [Hl7MllpMonitor(name="hl7", port=0, tls_cert=cert, tls_key=key)]})
    async with running_server(settings) as srv:
        port = await hl7_port(srv)
        client = ssl.create_default_context(cafile=str(cert))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        writer.write(mllp.frame(oru("TLS01")))
        await writer.drain()
        got = b""
        while FS + CR not in got:
            got += await asyncio.wait_for(reader.read(4096), 5)
        writer.close()
        assert msa(hl7.parse(got.strip(VT + FS + CR).decode())) == ("AA", "TLS01")
        # a plain-text client gets nothing (the TLS handshake fails), and the server carries on
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(mllp.frame(oru("PLAIN01")))
        try:
            answer = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            answer = b""
        assert b"MSA" not in answer
        writer.close()


async def test_connections_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    base = small_settings(tmp_path, bays=1)
    settings = base.model_copy(update={"monitors": [Hl7MllpMonitor(name="hl7", port=0, max_connections=2)]})
    async with running_server(settings) as srv:
        port = await hl7_port(srv)
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            extra = await asyncio.wait_for(reader.read(), 5)
        except ConnectionResetError:
            extra = b""
        assert extra == b""
        writer.close()
        for _, w in held:
            w.close()
        await asyncio.sleep(0.1)
        [ack] = await exchange(port, [oru("AFTERMAX")])  # room again once they are gone
        assert msa(ack) == ("AA", "AFTERMAX")
