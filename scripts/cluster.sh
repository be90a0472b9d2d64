#!/usr/bin/env bash
# A one-node Slurm cluster and a PostgreSQL server on this machine, to try (and test) the
# cluster path of docs/cluster.md without a cluster:
#
#   sudo scripts/cluster.sh install            # installs what is missing (apt), says what it skips
#   eval "$(sudo scripts/cluster.sh start)"   # installs what is missing, starts, prints the exports
#   scripts/cluster.sh env                     # the exports again, for another shell
#   sudo scripts/cluster.sh stop               # stops the daemons; configs, passwords and the databases stay
#   sudo scripts/cluster.sh purge              # stops them, drops the PostgreSQL cluster, deletes the state folder
#
# Everything lives in the state folder $MLP_CLUSTER_DIR (default /var/tmp/mlp_sweep-cluster):
# Slurm's config (named by the SLURM_CONF this prints: /etc/slurm is left alone) and state,
# a munged of its own (its key and socket there: /etc/munge and the system's munged are left
# alone), and PostgreSQL's data. Slurm: slurmctld and slurmd as root on ports
# $MLP_CLUSTER_SLURMCTLD_PORT and $MLP_CLUSTER_SLURMD_PORT (default 6817, 6818), one node
# sized to this machine (`slurmd -C`), one partition `debug`, no accounting (so no sacct:
# docs/cluster.md says what that changes).
# PostgreSQL: a cluster of its own ($MLP_CLUSTER_PG_NAME, default `mlp_sweep`, port
# $MLP_CLUSTER_PG_PORT, default 5433) with a role and a database for MLflow's runs and one for
# Optuna's studies; their passwords live in the PGPASSFILE this prints (mode 600), never in a
# URI, which command lines and runs record. .ci/run gives each run a fresh folder and free ports.
#
# Every step checks before it acts: `start` run twice changes nothing the second time.
set -euo pipefail

STATE="${MLP_CLUSTER_DIR:-/var/tmp/mlp_sweep-cluster}"
PG_PORT="${MLP_CLUSTER_PG_PORT:-5433}"
PG_CLUSTER="${MLP_CLUSTER_PG_NAME:-mlp_sweep}"
SLURMCTLD_PORT="${MLP_CLUSTER_SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${MLP_CLUSTER_SLURMD_PORT:-6818}"
MUNGE_DIR="$STATE/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket.2"
PARTITION=debug
DATABASES=(mlflow optuna) # each one a role of the same name, which owns it
export SLURM_CONF="$STATE/slurm.conf"
PATH="$PATH:/usr/sbin:/sbin" # the daemons live there, off a user's PATH

say() { echo "cluster.sh: $*" >&2; } # stdout carries only the exports, for eval

# --- install ----------------------------------------------------------------------------

PACKAGES=(slurm-wlm munge postgresql)

install_missing() {
    local missing=() present=()
    if command -v slurmctld > /dev/null && command -v slurmd > /dev/null; then present+=(slurm-wlm); else missing+=(slurm-wlm); fi
    if command -v munged > /dev/null; then present+=(munge); else missing+=(munge); fi
    if command -v pg_ctlcluster > /dev/null && [ -d /usr/lib/postgresql ]; then present+=(postgresql); else missing+=(postgresql); fi
    [ ${#present[@]} -eq 0 ] || say "present, not installed again: ${present[*]}"
    [ ${#missing[@]} -eq 0 ] && return
    [ "$(id -u)" -eq 0 ] || { say "installing ${missing[*]} needs root: run it with sudo"; exit 1; }
    say "installing ${missing[*]} (apt-get)"
    apt-get update -qq > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
}

# --- Slurm ------------------------------------------------------------------------------

start_munge() {
    # A munged of this folder's own: its key, socket, pid and log in $MUNGE_DIR (the socket's
    # folder must be searchable by everyone; the key stays root's).
    install -d -m 711 "$MUNGE_DIR"
    running "$MUNGE_DIR/munged.pid" && return
    [ -s "$MUNGE_DIR/munge.key" ] || mungekey --create --keyfile="$MUNGE_DIR/munge.key"
    munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" --pid-file="$MUNGE_DIR/munged.pid" \
        --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
}

write_slurm_conf() {
    # `slurmd -C` prints this machine's node line (CPUs, cores, RealMemory); the node answers
    # on loopback, so no name needs to resolve. KillWait: scancel's SIGTERM reaches jobs that
    # submitit tells to ignore it (it waits for SIGUSR2), so the SIGKILL comes after 5 s, not 30.
    local node
    node="$(slurmd -C | head -1) NodeAddr=127.0.0.1 State=UNKNOWN"
    cat > "$SLURM_CONF.new" << EOF
# Written by scripts/cluster.sh: a one-node cluster on $(hostname -s), no accounting.
ClusterName=mlp_sweep
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=5
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
$node
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if cmp -s "$SLURM_CONF.new" "$SLURM_CONF"; then rm "$SLURM_CONF.new"; else mv "$SLURM_CONF.new" "$SLURM_CONF"; fi
}

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2> /dev/null; } # the daemon of this pid file is alive

start_slurm() {
    install -d -m 700 "$STATE/slurmctld" "$STATE/slurmd"
    write_slurm_conf
    running "$STATE/slurmctld.pid" || slurmctld
    running "$STATE/slurmd.pid" || slurmd
    local node state
    node="$(hostname -s)"
    for _ in $(seq 60); do
        state="$(sinfo -h -n "$node" -o %T 2> /dev/null || true)"
        case "$state" in
            idle* | mixed* | allocated*) return ;;
            down* | drain*) scontrol update NodeName="$node" State=RESUME 2> /dev/null || true ;;
        esac
        sleep 1
    done
    say "the Slurm node did not come up (state: ${state:-none}); see $STATE/slurmctld.log and slurmd.log"
    exit 1
}

stop_slurm() {
    if running "$STATE/slurmctld.pid"; then
        scancel --quiet --full --user=root 2> /dev/null || true
        scontrol shutdown > /dev/null 2>&1 || true # ends slurmctld and the slurmd it knows
    fi
    for daemon in slurmd slurmctld; do
        for _ in $(seq 20); do
            running "$STATE/$daemon.pid" || break
            sleep 0.5
        done
        running "$STATE/$daemon.pid" && kill "$(cat "$STATE/$daemon.pid")"
    done
    running "$MUNGE_DIR/munged.pid" && kill "$(cat "$MUNGE_DIR/munged.pid")"
    return 0
}

# --- PostgreSQL -------------------------------------------------------------------------

pg_version() { ls /usr/lib/postgresql | sort -V | tail -1; }
psql_admin() { runuser -u postgres -- psql -X -q -At -p "$PG_PORT" -v ON_ERROR_STOP=1 "$@"; }

start_postgres() {
    local version
    version="$(pg_version)"
    if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$PG_CLUSTER"; then
        # Debian's defaults: peer login on the socket (the postgres user, for this script),
        # scram-sha-256 passwords over TCP (everyone else).
        pg_createcluster "$version" "$PG_CLUSTER" --port "$PG_PORT" --datadir "$STATE/postgresql" > /dev/null
    fi
    pg_lsclusters -h | awk -v c="$PG_CLUSTER" '$2 == c {print $4}' | grep -qx online ||
        pg_ctlcluster "$version" "$PG_CLUSTER" start
    touch "$STATE/pgpass" && chmod 600 "$STATE/pgpass"
    for db in "${DATABASES[@]}"; do ensure_database "$db"; done
}

ensure_database() {
    # The role's password is made once and kept in the pgpass file; the SQL that sets it goes
    # through psql's stdin, not its command line (ps shows a command line to every user).
    local name="$1" password
    password="$(awk -F: -v n="$name" '$3 == n && $4 == n {print $5}' "$STATE/pgpass")"
    if [ -z "$password" ]; then
        password="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
        echo "127.0.0.1:$PG_PORT:$name:$name:$password" >> "$STATE/pgpass"
    fi
    psql_admin << EOF
SELECT 'CREATE ROLE $name LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$name') \gexec
ALTER ROLE $name LOGIN PASSWORD '$password';
SELECT 'CREATE DATABASE $name OWNER $name' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$name') \gexec
EOF
}

stop_postgres() {
    command -v pg_lsclusters > /dev/null || return 0
    if pg_lsclusters -h | awk -v c="$PG_CLUSTER" '$2 == c && $4 == "online"' | grep -q .; then
        pg_ctlcluster "$(pg_version)" "$PG_CLUSTER" stop
    fi
}

drop_postgres() {
    command -v pg_lsclusters > /dev/null || return 0
    if pg_lsclusters -h | awk '{print $2}' | grep -qx "$PG_CLUSTER"; then
        pg_dropcluster --stop "$(pg_version)" "$PG_CLUSTER"
    fi
}

# --- what the sweeps need -----------------------------------------------------------------

print_env() {
    echo "export SLURM_CONF=$SLURM_CONF"
    echo "export MLP_CLUSTER_PARTITION=$PARTITION"
    echo "export PGPASSFILE=$STATE/pgpass"
    echo "export MLP_CLUSTER_MLFLOW_DB=postgresql://mlflow@127.0.0.1:$PG_PORT/mlflow"
    echo "export MLP_CLUSTER_OPTUNA_DB=postgresql://optuna@127.0.0.1:$PG_PORT/optuna"
}

case "${1:-}" in
    install) install_missing ;;
    start)
        {
            # The tools' own words (pg_ctlcluster's "Removed stale pid file.", mungekey's)
            # go to stderr with ours: stdout is eval'd.
            install_missing
            install -d -m 755 "$STATE"
            chmod 755 "$STATE" # a folder made by mktemp -d: PostgreSQL's and munge's users reach into it
            start_munge
            start_slurm
            start_postgres
        } >&2
        say "Slurm partition $PARTITION ($(sinfo -h -o '%c CPUs, %m MB')) and PostgreSQL on port $PG_PORT are up"
        print_env
        ;;
    stop)
        stop_slurm
        stop_postgres
        say "stopped (configs, passwords and databases are kept in $STATE and the $PG_CLUSTER cluster)"
        ;;
    purge)
        # What .ci/run's trap calls: nothing of this cluster is left running or on disk.
        stop_slurm
        drop_postgres
        rm -rf "$STATE"
        say "stopped and removed ($STATE, the $PG_CLUSTER cluster)"
        ;;
    env) print_env ;;
    *)
        echo "usage: $0 install | start | stop | purge | env" >&2
        exit 2
        ;;
esac
