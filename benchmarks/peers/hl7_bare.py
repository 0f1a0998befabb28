"""The bare peer for HL7 ingest: python-hl7's asyncio MLLP server that parses and ACKs, stores nothing.

Run: ``python -m benchmarks.peers.hl7_bare`` — prints ``PORT <n>`` once listening.
"""

from __future__ import annotations

import asyncio
import sys

import hl7
import hl7.mllp


async def handle(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
    """Parse every message (python-hl7) and answer AA with its create_ack()."""
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main() -> None:
    """Listen on an ephemeral port until killed."""
    server = await hl7.mllp.start_hl7_server(handle, "127.0.0.1", 0, limit=1 << 20)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
