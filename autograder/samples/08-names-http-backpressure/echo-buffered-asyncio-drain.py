# what: asyncio streams: write() then await drain(), which waits while the transport holds more than limit bytes (so the loop reads no more from that client); stop polled every 50 ms
# cell: serve_echo_buffered
# fails: none
def serve_echo_buffered(listener, stop, limit=65536):
    import asyncio

    async def main():
        writers = set()

        async def handle(reader, writer):
            writers.add(writer)
            writer.transport.set_write_buffer_limits(high=limit)
            try:
                while data := await reader.read(4096):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writers.discard(writer)
                writer.close()

        server = await asyncio.start_server(handle, sock=listener)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        await asyncio.sleep(0)

    asyncio.run(main())
