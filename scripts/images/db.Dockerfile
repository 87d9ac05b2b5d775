# PostgreSQL 15 and Redis 7 baked in, so tests do not apt-install them on every run.
ARG BASE
FROM ${BASE}
# No service may start during the build (there is no systemd running in a build container).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-15 postgresql-client-15 redis-server python3-psycopg2 python3-redis \
 && rm -f /usr/sbin/policy-rc.d \
 && apt-get clean && rm -rf /var/lib/apt/lists/* && touch -d @0 /var/lib/apt/lists
COPY redis-container.conf /etc/systemd/system/redis-server.service.d/container.conf
