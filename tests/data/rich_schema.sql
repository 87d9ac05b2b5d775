-- A rich sample database for the backup, drill and restore tests (issue #16 item 9): two application schemas and
-- an audit schema, a table partitioned by month (4 partitions, one with a sub-partition by hash), views, a
-- materialized view, functions and a procedure, sequences, the pgcrypto and citext extensions, an owner role,
-- a read-only role with grants (column grants too), default privileges, two large objects, and data. 24 tables:
-- 22 leaf tables (one of them empty) and 2 partitioned parents; 3,866 rows in the leaves.
-- Load as a superuser into an empty database:  psql -v ON_ERROR_STOP=1 -d rich -f rich_schema.sql
-- Roles are cluster-wide; re-loading into another database of the same cluster keeps them.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rich_owner') THEN CREATE ROLE rich_owner NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rich_reader') THEN
    CREATE ROLE rich_reader LOGIN PASSWORD 'reader-not-a-secret-test-only';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rich_writer') THEN CREATE ROLE rich_writer NOLOGIN; END IF;
END
$$;

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS citext;

CREATE SCHEMA shop AUTHORIZATION rich_owner;
CREATE SCHEMA crm AUTHORIZATION rich_owner;
CREATE SCHEMA audit AUTHORIZATION rich_owner;

SET ROLE rich_owner;
-- Tables created from here on by rich_owner in shop are readable by the reader without another GRANT.
ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO rich_reader;

CREATE TABLE crm.customers (id bigserial PRIMARY KEY, email citext UNIQUE NOT NULL, name text NOT NULL,
                            created_at timestamptz NOT NULL DEFAULT '2026-01-01');
CREATE TABLE crm.addresses (id serial PRIMARY KEY, customer_id bigint REFERENCES crm.customers, city text, zip text);
CREATE TABLE crm.contacts (id serial PRIMARY KEY, customer_id bigint REFERENCES crm.customers, kind text, value text);
CREATE TABLE crm.segments (id serial PRIMARY KEY, name text UNIQUE);
CREATE TABLE crm.customer_segments (customer_id bigint REFERENCES crm.customers, segment_id int REFERENCES crm.segments,
                                    PRIMARY KEY (customer_id, segment_id));
CREATE TABLE crm.notes (id serial PRIMARY KEY, customer_id bigint REFERENCES crm.customers, body text);
CREATE TABLE shop.categories (id serial PRIMARY KEY, name text UNIQUE, parent_id int REFERENCES shop.categories);
CREATE TABLE shop.products (id serial PRIMARY KEY, category_id int REFERENCES shop.categories, sku text UNIQUE,
                            name text, price numeric(10, 2) CHECK (price >= 0));
CREATE TABLE shop.stock (product_id int PRIMARY KEY REFERENCES shop.products, quantity int NOT NULL);
CREATE TABLE shop.suppliers (id serial PRIMARY KEY, name text);
CREATE TABLE shop.product_suppliers (product_id int REFERENCES shop.products, supplier_id int REFERENCES shop.suppliers,
                                     PRIMARY KEY (product_id, supplier_id));
CREATE TABLE shop.coupons (code text PRIMARY KEY, percent int, secret bytea);
CREATE TABLE shop.carts (id serial PRIMARY KEY, customer_id bigint, created_at timestamptz);
CREATE TABLE shop.cart_items (cart_id int REFERENCES shop.carts, product_id int REFERENCES shop.products, quantity int,
                              PRIMARY KEY (cart_id, product_id));
CREATE TABLE shop.empty_wishlist (id serial PRIMARY KEY, customer_id bigint);
-- Orders, partitioned by month; March is itself split by hash of the customer.
CREATE TABLE shop.orders (id bigint GENERATED ALWAYS AS IDENTITY, customer_id bigint NOT NULL, ordered_at date NOT NULL,
                          total numeric(12, 2), PRIMARY KEY (id, ordered_at, customer_id)) PARTITION BY RANGE (ordered_at);
CREATE TABLE shop.orders_2026_01 PARTITION OF shop.orders FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE shop.orders_2026_02 PARTITION OF shop.orders FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
CREATE TABLE shop.orders_2026_03 PARTITION OF shop.orders FOR VALUES FROM ('2026-03-01') TO ('2026-04-01')
  PARTITION BY HASH (customer_id);
CREATE TABLE shop.orders_2026_03_h0 PARTITION OF shop.orders_2026_03 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE shop.orders_2026_03_h1 PARTITION OF shop.orders_2026_03 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE shop.orders_default PARTITION OF shop.orders DEFAULT;
CREATE TABLE audit.events (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT '2026-01-01', actor text, action text);
CREATE TABLE audit.logins (id bigserial PRIMARY KEY, customer_id bigint, at timestamptz, ok boolean);
CREATE SEQUENCE shop.invoice_no START 1000;
CREATE SEQUENCE audit.unused_seq;

CREATE FUNCTION shop.price_with_tax(price numeric, rate numeric DEFAULT 0.2) RETURNS numeric
  LANGUAGE sql IMMUTABLE AS $$ SELECT round(price * (1 + rate), 2) $$;
CREATE FUNCTION shop.next_invoice() RETURNS text LANGUAGE sql AS $$ SELECT 'INV-' || nextval('shop.invoice_no') $$;
CREATE FUNCTION audit.log_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit.events (at, actor, action) VALUES ('2026-01-01', 'trigger', TG_OP || ' ' || TG_TABLE_NAME);
  RETURN NEW;
END $$;
CREATE PROCEDURE crm.merge_customers(keep bigint, drop_id bigint) LANGUAGE sql AS $$
  UPDATE crm.notes SET customer_id = keep WHERE customer_id = drop_id;
$$;
CREATE TRIGGER stock_audit AFTER UPDATE ON shop.stock FOR EACH ROW EXECUTE FUNCTION audit.log_event();

-- Data, deterministic.
INSERT INTO crm.customers (email, name) SELECT 'c' || i || '@example.org', 'Customer ' || i FROM generate_series(1, 300) i;
INSERT INTO crm.addresses (customer_id, city, zip) SELECT i, 'City ' || (i % 17), lpad(i::text, 5, '0') FROM generate_series(1, 300) i;
INSERT INTO crm.contacts (customer_id, kind, value) SELECT 1 + i % 300, 'phone', '+49-' || i FROM generate_series(1, 450) i;
INSERT INTO crm.segments (name) VALUES ('new'), ('loyal'), ('wholesale'), ('dormant');
INSERT INTO crm.customer_segments SELECT i, 1 + i % 4 FROM generate_series(1, 300) i;
INSERT INTO crm.notes (customer_id, body) SELECT 1 + i % 300, 'note ' || i FROM generate_series(1, 120) i;
INSERT INTO shop.categories (name) VALUES ('tools'), ('garden'), ('kitchen');
INSERT INTO shop.categories (name, parent_id) VALUES ('knives', 3), ('pots', 3);
INSERT INTO shop.products (category_id, sku, name, price) SELECT 1 + i % 5, 'SKU-' || i, 'Product ' || i, i * 1.5 FROM generate_series(1, 200) i;
INSERT INTO shop.stock SELECT id, id % 50 FROM shop.products;
INSERT INTO shop.suppliers (name) SELECT 'Supplier ' || i FROM generate_series(1, 12) i;
INSERT INTO shop.product_suppliers SELECT id, 1 + id % 12 FROM shop.products;
INSERT INTO shop.coupons SELECT 'C' || i, 5 * (i % 4 + 1), digest('c' || i, 'sha256') FROM generate_series(1, 25) i;
INSERT INTO shop.carts (customer_id, created_at) SELECT i, '2026-03-01' FROM generate_series(1, 80) i;
INSERT INTO shop.cart_items SELECT 1 + i % 80, 1 + i % 200, 1 + i % 3 FROM generate_series(1, 160) i;
INSERT INTO shop.orders (customer_id, ordered_at, total)
  SELECT 1 + i % 300, date '2026-01-01' + (i % 120), (i % 97) * 3.25 FROM generate_series(1, 1000) i;
INSERT INTO audit.logins (customer_id, at, ok) SELECT 1 + i % 300, '2026-02-01', i % 9 <> 0 FROM generate_series(1, 500) i;
UPDATE shop.stock SET quantity = quantity + 1 WHERE product_id <= 10;  -- 10 audit events through the trigger
SELECT shop.next_invoice() FROM generate_series(1, 7);

CREATE VIEW shop.order_totals AS
  SELECT customer_id, count(*) AS orders, sum(total) AS total FROM shop.orders GROUP BY customer_id;
CREATE VIEW crm.customer_overview AS
  SELECT c.id, c.email, a.city, (SELECT count(*) FROM crm.notes n WHERE n.customer_id = c.id) AS notes
    FROM crm.customers c LEFT JOIN crm.addresses a ON a.customer_id = c.id;
CREATE VIEW shop.low_stock AS SELECT p.sku, s.quantity FROM shop.products p JOIN shop.stock s ON s.product_id = p.id
  WHERE s.quantity < 5;
CREATE MATERIALIZED VIEW shop.monthly_revenue AS
  SELECT date_trunc('month', ordered_at)::date AS month, sum(total) AS revenue FROM shop.orders GROUP BY 1;
CREATE MATERIALIZED VIEW crm.segment_sizes AS
  SELECT s.name, count(*) AS customers FROM crm.segments s JOIN crm.customer_segments cs ON cs.segment_id = s.id GROUP BY 1
  WITH NO DATA;

-- The reader sees shop (default privileges above) and crm, not the audit schema nor the coupons' secrets.
GRANT USAGE ON SCHEMA shop, crm TO rich_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA crm TO rich_reader;
REVOKE SELECT ON shop.coupons FROM rich_reader;
GRANT SELECT (code, percent) ON shop.coupons TO rich_reader;
GRANT USAGE ON SCHEMA shop, crm, audit TO rich_writer;
GRANT INSERT, UPDATE ON shop.carts, shop.cart_items TO rich_writer;
GRANT USAGE ON SEQUENCE shop.carts_id_seq TO rich_writer;
GRANT INSERT ON audit.events TO rich_writer;
REVOKE EXECUTE ON FUNCTION shop.next_invoice() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shop.next_invoice() TO rich_writer;
-- Two large objects (documents an app keeps in the database), the owner's; the reader may read the first.
DO $$
DECLARE
  doc oid;
BEGIN
  doc := lo_from_bytea(0, convert_to('invoice 1001', 'UTF8'));
  EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO rich_reader', doc);
  PERFORM lo_from_bytea(0, convert_to('invoice 1002', 'UTF8'));
END
$$;
RESET ROLE;

-- The database's own privileges (which pg_dump of one database does not carry): only the reader and the writer
-- may connect, and only the writer may make temporary tables.
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO rich_reader, rich_writer', current_database());
  EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO rich_writer', current_database());
END
$$;

-- Its settings (kept by the server with the database, not in pg_dump of it either): a search path with a quoted
-- element, a custom setting, and one for the reader in this database only.
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET search_path = "$user", public, crm', current_database());
  EXECUTE format('ALTER DATABASE %I SET app.tenant = %L', current_database(), 'rich');
  EXECUTE format('ALTER ROLE rich_reader IN DATABASE %I SET statement_timeout = %L', current_database(), '5s');
END
$$;
