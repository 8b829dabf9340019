"""PostgreSQL catalog's schema step 1, frozen: the tables as the first release with PostgreSQL created them.

Generated once from ``schema``'s declarations (SQLAlchemy's PostgreSQL DDL) and never edited: a later change to the
declarations is a new step in ``postgres.STEPS`` (``tests/test_postgres.py`` compares a fresh database made by the
steps with the declarations, so a change without its step fails there).
"""

TABLES_1 = """
CREATE TABLE api_tokens (
    id SERIAL NOT NULL,
    name VARCHAR(64) NOT NULL,
    token_hash VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    last_used_at TIMESTAMP WITHOUT TIME ZONE,
    PRIMARY KEY (id),
    UNIQUE (name),
    UNIQUE (token_hash)
);

CREATE TABLE items (
    id SERIAL NOT NULL,
    path TEXT NOT NULL,
    kind VARCHAR(16) NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    error TEXT,
    content_hash VARCHAR(64),
    taken_at TIMESTAMP WITHOUT TIME ZONE,
    width INTEGER,
    height INTEGER,
    thumbnail VARCHAR(64),
    indexed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    duration_ms INTEGER,
    playable BOOLEAN,
    pair_path TEXT,
    motion_offset BIGINT,
    error_code VARCHAR(32),
    latitude FLOAT,
    longitude FLOAT,
    location_note TEXT,
    location_read BOOLEAN,
    place_city TEXT,
    place_city_zh TEXT,
    place_region TEXT,
    place_country VARCHAR(2),
    has_text BOOLEAN,
    PRIMARY KEY (id),
    UNIQUE (path)
);

CREATE INDEX ix_items_kind_status ON items (kind, status);

CREATE INDEX ix_items_pair_path ON items (pair_path);

CREATE INDEX ix_items_place_city ON items (lower(place_city));

CREATE INDEX ix_items_place_city_zh ON items (place_city_zh);

CREATE INDEX ix_items_place_country ON items (place_country);

CREATE INDEX ix_items_place_region ON items (lower(place_region));

CREATE INDEX ix_items_places ON items (
    status, place_country, place_region, place_city, place_city_zh, latitude, longitude
);

CREATE INDEX ix_items_status ON items (status);

CREATE INDEX ix_items_status_taken_at ON items (status, taken_at);

CREATE INDEX ix_items_taken_at ON items (taken_at);

CREATE TABLE meta (
    key VARCHAR(64) NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (key)
);

CREATE TABLE people (
    id SERIAL NOT NULL,
    name TEXT,
    hidden BOOLEAN NOT NULL,
    cover_face_id INTEGER,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id)
);

CREATE TABLE face_state (
    item_id INTEGER NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    model VARCHAR(96) NOT NULL,
    face_count INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (item_id),
    FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE
);

CREATE TABLE faces (
    id SERIAL NOT NULL,
    item_id INTEGER NOT NULL,
    box_left FLOAT NOT NULL,
    box_top FLOAT NOT NULL,
    box_right FLOAT NOT NULL,
    box_bottom FLOAT NOT NULL,
    landmarks BYTEA NOT NULL,
    score FLOAT NOT NULL,
    embedding BYTEA NOT NULL,
    model VARCHAR(96) NOT NULL,
    person_id INTEGER,
    manual BOOLEAN NOT NULL,
    time_ms INTEGER,
    PRIMARY KEY (id),
    FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE,
    FOREIGN KEY(person_id) REFERENCES people (id) ON DELETE SET NULL
);

CREATE INDEX ix_faces_item_id ON faces (item_id);

CREATE INDEX ix_faces_person_id ON faces (person_id);

CREATE TABLE hidden_items (
    item_id INTEGER NOT NULL,
    hidden_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (item_id),
    FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE
);

CREATE TABLE item_tags (
    item_id INTEGER NOT NULL,
    tag VARCHAR(64) NOT NULL,
    score FLOAT NOT NULL,
    PRIMARY KEY (item_id, tag),
    FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE
);

CREATE INDEX ix_item_tags_tag ON item_tags (tag, item_id);

CREATE TABLE ocr_state (
    item_id INTEGER NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    error TEXT,
    line_count INTEGER NOT NULL,
    read_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (item_id),
    FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE
);

CREATE TABLE perceptual_hashes (
    item_id INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    rendition VARCHAR(64) NOT NULL,
    phash BIGINT NOT NULL,
    PRIMARY KEY (item_id, time_ms),
    FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE
);

CREATE TABLE vectors (
    id SERIAL NOT NULL,
    item_id INTEGER NOT NULL,
    time_ms INTEGER,
    embedding vector NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE
);

CREATE INDEX ix_vectors_item_id ON vectors (item_id);
"""

# Step 2: the scan's work queue and the workers that take from it (``work_queue``). Times are the server's (``now()``),
# so hosts whose clocks disagree still agree on when a claim expires.
WORK_QUEUE_2 = """
CREATE TABLE scan_queue (
    id BIGSERIAL PRIMARY KEY,
    run BIGINT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    kind VARCHAR(16) NOT NULL,
    still TEXT,
    known BOOLEAN NOT NULL,
    claimed_by TEXT,
    claimed_until TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_by TEXT,
    outcome VARCHAR(16)
);

CREATE INDEX ix_scan_queue_open ON scan_queue (id) WHERE done_by IS NULL;

CREATE INDEX ix_scan_queue_claimed_by ON scan_queue (claimed_by) WHERE done_by IS NULL;

CREATE TABLE scan_workers (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    role VARCHAR(16) NOT NULL,
    state TEXT NOT NULL,
    files BIGINT NOT NULL DEFAULT 0,
    started_at TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL
);
"""
