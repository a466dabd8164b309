/* Load generator for the MySQL bench (wirecache.bench.mysql).
 *
 * Each client thread opens its own connection, waits at a barrier, then runs
 * a read statement with one integer parameter N (default
 * "SELECT id, k, v FROM bench_items WHERE id = ?"), N drawn from 1..KEYS
 * uniformly or Zipf-distributed (-z), over the text protocol (COM_QUERY, the
 * "?" replaced by N) or the binary protocol (one prepared statement per
 * connection, COM_STMT_EXECUTE), reading every row. With -w, that percentage
 * of the statements is the write statement instead (default
 * "UPDATE bench_items SET k = k + 1 WHERE id = ?", same key distribution).
 * Latency of each statement in microseconds goes to LATFILE, one per line.
 *
 * usage: mysqlload [-p] [-z S] [-w PCT] [-r READ_SQL] [-u WRITE_SQL]
 *                  HOST PORT USER PASSWORD DB text|prepared CLIENTS SECONDS TXNS KEYS LATFILE
 *   SECONDS > 0: run that long; else TXNS statements per client.
 *   -z S: P(N = k) proportional to 1/k^S (like pgbench's random_zipfian); 0 = uniform.
 *   -p: every second of the run, "progress: T s, R tps" on stderr (pgbench -P 1's
 *       format: T seconds since the clock started, R statements per second since
 *       the previous line).
 * prints: "transactions=T reads=R writes=W failed=F elapsed=S" (exit status 1
 * when F > 0; the first failures of each client are described on stderr)
 */
#include <math.h>
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *host, *user, *password, *db;
static const char *read_sql = "SELECT id, k, v FROM bench_items WHERE id = ?";
static const char *write_sql = "UPDATE bench_items SET k = k + 1 WHERE id = ?";
static unsigned port;
static int prepared, seconds, txns, keys, write_pct;
static double *zipf_cdf; /* NULL: uniform */
static pthread_barrier_t barrier;
static double deadline;
static int finished; /* client threads done, read by the progress loop */

typedef struct {
  int index;
  long *lat;
  long n, cap, failed, writes;
  int ok;
} worker_t;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void record(worker_t *w, long us) {
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 65536;
    w->lat = realloc(w->lat, w->cap * sizeof(long));
  }
  w->lat[w->n] = us;
  __atomic_store_n(&w->n, w->n + 1, __ATOMIC_RELEASE); /* read by the progress loop */
}

static int draw(unsigned *seed) {
  if (!zipf_cdf) return 1 + rand_r(seed) % keys;
  double u = (rand_r(seed) + 0.5) / ((double)RAND_MAX + 1.0);
  int lo = 0, hi = keys - 1; /* first index with cdf >= u */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (zipf_cdf[mid] >= u) hi = mid; else lo = mid + 1;
  }
  return lo + 1;
}

static MYSQL_STMT *prepare(MYSQL *conn, const char *q, int *id) {
  MYSQL_STMT *stmt = mysql_stmt_init(conn);
  if (mysql_stmt_prepare(stmt, q, strlen(q))) {
    fprintf(stderr, "prepare %s: %s\n", q, mysql_stmt_error(stmt));
    return NULL;
  }
  MYSQL_BIND param;
  memset(&param, 0, sizeof param);
  param.buffer_type = MYSQL_TYPE_LONG;
  param.buffer = id;
  mysql_stmt_bind_param(stmt, &param);
  return stmt;
}

/* Text protocol: the statement with its "?" replaced by the key. */
static int format(char *buf, size_t size, const char *q, int id) {
  const char *mark = strchr(q, '?');
  if (!mark) return snprintf(buf, size, "%s", q);
  return snprintf(buf, size, "%.*s%d%s", (int)(mark - q), q, id, mark + 1);
}

static void *run_client(void *arg);

static void *run(void *arg) {
  void *ret = run_client(arg);
  __atomic_add_fetch(&finished, 1, __ATOMIC_RELEASE);
  return ret;
}

/* Until every client is done: each second, the statements done in it. */
static void report_progress(worker_t *w, int clients, double start) {
  long last = 0;
  double last_t = start;
  for (int tick = 1; __atomic_load_n(&finished, __ATOMIC_ACQUIRE) < clients;) {
    if (now() < start + tick) {
      usleep(10000);
      continue;
    }
    long n = 0;
    for (int i = 0; i < clients; i++) n += __atomic_load_n(&w[i].n, __ATOMIC_ACQUIRE);
    double t = now();
    fprintf(stderr, "progress: %.1f s, %.1f tps\n", t - start, (n - last) / (t - last_t));
    last = n;
    last_t = t;
    tick++;
  }
}

static void *run_client(void *arg) {
  worker_t *w = arg;
  unsigned seed = 12345u + w->index * 7919u;
  MYSQL *conn = mysql_init(NULL);
  unsigned int ssl = 0;
  mysql_optionsv(conn, MYSQL_OPT_SSL_ENFORCE, &ssl);
  my_bool verify = 0;
  mysql_optionsv(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
  MYSQL_STMT *rstmt = NULL, *wstmt = NULL;
  int id = 0;
  if (!mysql_real_connect(conn, host, user, password, db, port, NULL, 0)) {
    fprintf(stderr, "connect: %s\n", mysql_error(conn));
    pthread_barrier_wait(&barrier);
    return NULL;
  }
  if (prepared && (!(rstmt = prepare(conn, read_sql, &id)) ||
                   (write_pct > 0 && !(wstmt = prepare(conn, write_sql, &id))))) {
    pthread_barrier_wait(&barrier);
    return NULL;
  }
  w->ok = 1;
  pthread_barrier_wait(&barrier);
  char sql[1024];
  for (long done = 0;; done++) {
    if (seconds > 0 ? (done % 16 == 0 && now() >= deadline) : done >= txns) break;
    int write = write_pct > 0 && (int)(rand_r(&seed) % 100) < write_pct;
    w->writes += write;
    id = draw(&seed);
    double t0 = now();
    int bad;
    MYSQL_STMT *stmt = write ? wstmt : rstmt;
    if (prepared) {
      bad = mysql_stmt_execute(stmt) ? 1 : mysql_stmt_store_result(stmt) ? 2 : 0;
      mysql_stmt_free_result(stmt);
    } else {
      int len = format(sql, sizeof sql, write ? write_sql : read_sql, id);
      bad = mysql_real_query(conn, sql, len);
      if (!bad && mysql_field_count(conn) > 0) {
        MYSQL_RES *res = mysql_store_result(conn);
        if (res) mysql_free_result(res); else bad = 2;
      }
    }
    if (bad && w->failed++ < 3)
      fprintf(stderr, "client %d: %s %s id %d: %u %s\n", w->index, write ? "write" : "read",
              bad == 1 ? "execute" : "store", id,
              prepared ? mysql_stmt_errno(stmt) : mysql_errno(conn),
              prepared ? mysql_stmt_error(stmt) : mysql_error(conn));
    record(w, (long)((now() - t0) * 1e6));
  }
  if (rstmt) mysql_stmt_close(rstmt);
  if (wstmt) mysql_stmt_close(wstmt);
  mysql_close(conn);
  return NULL;
}

int main(int argc, char **argv) {
  double zipf_s = 0;
  int progress = 0;
  for (int opt; (opt = getopt(argc, argv, "pz:w:r:u:")) != -1;) {
    if (opt == 'p') progress = 1;
    else if (opt == 'z') zipf_s = atof(optarg);
    else if (opt == 'w') write_pct = atoi(optarg);
    else if (opt == 'r') read_sql = optarg;
    else if (opt == 'u') write_sql = optarg;
    else return 2;
  }
  argv += optind - 1;
  if (argc - optind != 11) {
    fprintf(stderr, "usage: mysqlload [-p] [-z S] [-w PCT] [-r READ_SQL] [-u WRITE_SQL] HOST PORT "
                    "USER PASSWORD DB text|prepared CLIENTS SECONDS TXNS KEYS LATFILE\n");
    return 2;
  }
  host = argv[1]; port = atoi(argv[2]); user = argv[3]; password = argv[4]; db = argv[5];
  prepared = strcmp(argv[6], "prepared") == 0;
  int clients = atoi(argv[7]);
  seconds = atoi(argv[8]); txns = atoi(argv[9]); keys = atoi(argv[10]);
  if (zipf_s > 0) { /* cumulative distribution over 1..KEYS, searched per draw */
    zipf_cdf = malloc(keys * sizeof(double));
    double sum = 0;
    for (int k = 0; k < keys; k++) zipf_cdf[k] = sum += pow(k + 1, -zipf_s);
    for (int k = 0; k < keys; k++) zipf_cdf[k] /= sum;
  }
  mysql_library_init(0, NULL, NULL);
  pthread_barrier_init(&barrier, NULL, clients + 1);
  worker_t *w = calloc(clients, sizeof *w);
  pthread_t *t = calloc(clients, sizeof *t);
  for (int i = 0; i < clients; i++) {
    w[i].index = i;
    pthread_create(&t[i], NULL, run, &w[i]);
  }
  deadline = now() + seconds;
  pthread_barrier_wait(&barrier);
  double start = now();
  deadline = start + seconds;
  long total = 0, failed = 0, writes = 0;
  FILE *out = fopen(argv[11], "w");
  if (progress) report_progress(w, clients, start);
  for (int i = 0; i < clients; i++) {
    pthread_join(t[i], NULL);
    if (!w[i].ok) { fprintf(stderr, "client %d did not run\n", i); return 1; }
  }
  double elapsed = now() - start;
  for (int i = 0; i < clients; i++) {
    for (long j = 0; j < w[i].n; j++) fprintf(out, "%ld\n", w[i].lat[j]);
    total += w[i].n;
    failed += w[i].failed;
    writes += w[i].writes;
  }
  fclose(out);
  printf("transactions=%ld reads=%ld writes=%ld failed=%ld elapsed=%.6f\n", total,
         total - writes, writes, failed, elapsed);
  mysql_library_end();
  return failed ? 1 : 0;
}
