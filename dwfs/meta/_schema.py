"""The metadata schema.

Every table that describes the tree carries birth and death: the txg that
created a row and the txg that ended it (NULL while it is live). A snapshot is
a txg number T in the snapshots table, and sees the rows with
birth <= T < death (meta._rows.View). A change to a row some snapshot sees ends
it (sets death) and, for an update, inserts the new version; rows no snapshot
sees are changed or deleted in place. Deleting a snapshot deletes the ended
rows only it saw. With no snapshot, no ended row exists.

inline_data holds the bytes of small files (see dwfs.vfs._files): a file has
inline data or extents, never both. logged holds bytes an fsync made durable
before they were stored as chunks (the intent log, see dwfs.vfs._files): they
are applied over the file's content, in seq order, when a pool mounts after a
crash, and dropped once a flush has stored them.

remote holds where each chunk's sealed copy lies on the remote tier (a byte range
of a pack). A chunk whose local copy was evicted, or that a pool attached from
the remote never had, keeps its chunks row with segment NOT_LOCAL (-1). packs holds
each pack's size as stored, so a sync can tell how much of it is dead (remote
rows of dead chunks go with garbage collection). pins lists the inodes kept
local whatever the cache's size (dwfsctl pin).
"""

from __future__ import annotations

MIGRATIONS = """
CREATE TABLE IF NOT EXISTS inline_data(
    ino INT NOT NULL, data BLOB NOT NULL, birth INT NOT NULL, death INT);
CREATE UNIQUE INDEX IF NOT EXISTS inline_ino ON inline_data(ino) WHERE death IS NULL;
CREATE TABLE IF NOT EXISTS logged(
    seq INTEGER PRIMARY KEY, ino INT NOT NULL, off INT NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS logged_ino ON logged(ino, seq);
INSERT OR IGNORE INTO counters VALUES ('next_log', 1);
CREATE TABLE IF NOT EXISTS snapshots(
    name TEXT PRIMARY KEY, id INT NOT NULL, txg INT NOT NULL, created INT NOT NULL,
    auto INT NOT NULL, held INT NOT NULL, held_until INT);
CREATE UNIQUE INDEX IF NOT EXISTS snapshots_id ON snapshots(id);
CREATE INDEX IF NOT EXISTS snapshots_txg ON snapshots(txg);
INSERT OR IGNORE INTO counters VALUES ('next_snapshot', 1);
CREATE TABLE IF NOT EXISTS settings(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS inodes_ended ON inodes(death) WHERE death IS NOT NULL;
CREATE INDEX IF NOT EXISTS dirents_ended ON dirents(death) WHERE death IS NOT NULL;
CREATE INDEX IF NOT EXISTS extents_ended ON extents(death) WHERE death IS NOT NULL;
CREATE INDEX IF NOT EXISTS xattrs_ended ON xattrs(death) WHERE death IS NOT NULL;
CREATE INDEX IF NOT EXISTS inline_ended ON inline_data(death) WHERE death IS NOT NULL;
CREATE TABLE IF NOT EXISTS remote(
    id BLOB PRIMARY KEY, pack BLOB NOT NULL, offset INT NOT NULL, length INT NOT NULL);
CREATE TABLE IF NOT EXISTS pins(ino INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS packs(pack BLOB PRIMARY KEY, bytes INT NOT NULL);
CREATE INDEX IF NOT EXISTS inline_by_ino ON inline_data(ino, birth);
CREATE INDEX IF NOT EXISTS xattrs_by_ino ON xattrs(ino, name, birth);
CREATE INDEX IF NOT EXISTS remote_by_pack ON remote(pack);
"""
"""Tables added since the first release, created when an older image is loaded
(every statement is idempotent, and none is journaled: each open runs them).

inline_by_ino and xattrs_by_ino serve what the partial indexes on live rows
cannot: a purge deletes an inode's rows whatever their death, and a snapshot
sees rows by birth and death; without them each was a scan of the whole table
(a purge of 10,000 small files took 1.7 s, tests/unit/meta/test_query_plans.py).
remote_by_pack serves a repack, which asks for each sparse pack's rows."""

SCHEMA = (
    """
CREATE TABLE inodes(
    ino INT NOT NULL, mode INT NOT NULL, uid INT NOT NULL, gid INT NOT NULL,
    nlink INT NOT NULL, size INT NOT NULL, atime INT NOT NULL, mtime INT NOT NULL,
    ctime INT NOT NULL, rdev INT NOT NULL, target BLOB, birth INT NOT NULL, death INT);
CREATE UNIQUE INDEX inodes_live ON inodes(ino) WHERE death IS NULL;
CREATE INDEX inodes_ino ON inodes(ino, birth);
CREATE TABLE dirents(
    parent INT NOT NULL, name BLOB NOT NULL, cookie INT NOT NULL, ino INT NOT NULL,
    birth INT NOT NULL, death INT);
CREATE UNIQUE INDEX dirents_name ON dirents(parent, name) WHERE death IS NULL;
CREATE INDEX dirents_cookie ON dirents(parent, cookie);
CREATE INDEX dirents_ino ON dirents(ino);
CREATE TABLE extents(
    ino INT NOT NULL, off INT NOT NULL, len INT NOT NULL, chunk BLOB NOT NULL,
    chunk_off INT NOT NULL, birth INT NOT NULL, death INT);
CREATE INDEX extents_ino ON extents(ino, off);
CREATE TABLE xattrs(
    ino INT NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL, birth INT NOT NULL, death INT);
CREATE UNIQUE INDEX xattrs_key ON xattrs(ino, name) WHERE death IS NULL;
CREATE TABLE chunks(
    id BLOB PRIMARY KEY, seq INT NOT NULL, segment INT NOT NULL, offset INT NOT NULL,
    shard_len INT NOT NULL, sealed_len INT NOT NULL, refs INT NOT NULL);
CREATE INDEX chunks_segment ON chunks(segment, refs);
CREATE TABLE counters(name TEXT PRIMARY KEY, value INT NOT NULL);
INSERT INTO counters VALUES ('next_ino', 2), ('next_cookie', 3);
"""
    + MIGRATIONS
)

INODES_V1 = "ino INTEGER PRIMARY KEY"
"""How the inodes table of images made before snapshots begins (one row per
inode, keyed by it); _db rebuilds such a table with REBUILD_INODES."""
REBUILD_INODES = """
ALTER TABLE inodes RENAME TO inodes_v1;
CREATE TABLE inodes(
    ino INT NOT NULL, mode INT NOT NULL, uid INT NOT NULL, gid INT NOT NULL,
    nlink INT NOT NULL, size INT NOT NULL, atime INT NOT NULL, mtime INT NOT NULL,
    ctime INT NOT NULL, rdev INT NOT NULL, target BLOB, birth INT NOT NULL, death INT);
INSERT INTO inodes SELECT * FROM inodes_v1;
DROP TABLE inodes_v1;
CREATE UNIQUE INDEX inodes_live ON inodes(ino) WHERE death IS NULL;
CREATE INDEX inodes_ino ON inodes(ino, birth);
"""
