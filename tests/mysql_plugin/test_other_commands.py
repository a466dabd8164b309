"""Commands no driver here sends on its own, relayed through wirecache: COM_FIELD_LIST
and COM_SET_OPTION (sent with PyMySQL's command writer; answers read raw)."""

from __future__ import annotations

import struct

from pymysql.constants import CLIENT, COMMAND

from mysql_plugin.test_e2e import connector
from mysql_plugin.util import connect, rows

MULTI_STATEMENTS_ON, MULTI_STATEMENTS_OFF = 0, 1


def _answer(conn) -> list[bytes]:
    """Packets of one response, up to its OK, ERR or EOF packet."""
    packets = []
    while True:
        packet = conn._read_packet()
        packets.append(packet.get_all_data())
        if packet.is_ok_packet() or packet.is_eof_packet() or packet.is_error_packet():
            return packets


def test_field_list_is_relayed(mariadb_server, proxy, table):
    with connect(mariadb_server, proxy) as conn:
        conn._execute_command(COMMAND.COM_FIELD_LIST, f"{table}\0".encode())
        packets = _answer(conn)
        # One column definition per column (id, v), then EOF.
        assert len(packets) == 3
        assert b"id" in packets[0] and b"v" in packets[1]
        assert rows(conn, f"SELECT COUNT(*) FROM {table}") == [(2,)]


def test_set_option_is_relayed_and_takes_effect(mariadb_server, proxy, table):
    with connect(mariadb_server, proxy, client_flag=CLIENT.MULTI_STATEMENTS) as conn:
        with conn.cursor() as cur:  # allowed at first
            cur.execute("SELECT 1; SELECT 2")
            assert cur.fetchall() == ((1,),)
            assert cur.nextset() and cur.fetchall() == ((2,),)
            assert not cur.nextset()
        conn._execute_command(COMMAND.COM_SET_OPTION, struct.pack("<H", MULTI_STATEMENTS_OFF))
        assert _answer(conn)[-1][0] in (0x00, 0xFE)  # OK (or EOF-style OK)
        # The origin now refuses several statements in one COM_QUERY.
        try:
            rows(conn, "SELECT 1; SELECT 2")
            refused = False
        except Exception:  # noqa: BLE001 - the driver's error class varies
            refused = True
        assert refused
    with connect(mariadb_server, proxy) as conn:
        conn._execute_command(COMMAND.COM_SET_OPTION, struct.pack("<H", MULTI_STATEMENTS_ON))
        assert _answer(conn)[-1][0] in (0x00, 0xFE)
        assert rows(conn, f"SELECT COUNT(*) FROM {table}") == [(2,)]


def test_stmt_reset_is_relayed(mariadb_server, proxy, table, marker):
    """COM_STMT_RESET (mysql-connector's cmd_stmt_reset) between cached executions."""
    conn = connector(mariadb_server, proxy, ssl_disabled=True)
    try:
        cur = conn.cursor(prepared=True)
        query = f"SELECT v FROM {table} WHERE id = %s {marker}"
        cur.execute(query, (1,))
        assert cur.fetchall() == [("one",)]
        conn.cmd_stmt_reset(cur._prepared["statement_id"])
        cur.execute(query, (1,))
        assert cur.fetchall() == [("one",)]
        cur.execute(query, (2,))
        assert cur.fetchall() == [("two",)]
    finally:
        conn.close()
    # id=1 once (then a hit after the reset), id=2 once.
    assert mariadb_server.statement_count(marker) == 2
