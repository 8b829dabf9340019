"""The catalog: everything the product knows about the library, and the only code that runs SQL or touches FAISS.

It owns the database (SQLAlchemy on SQLite, WAL; its tables, frozen migrations and full-text index), the vector
index (FAISS, a cache of the database's vectors kept in step by ``Catalog``), who owns the data dir, and the
repositories the rest of the product reads and writes through. Callers get plain frozen dataclasses, never ORM rows.
"""
