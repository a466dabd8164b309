/* Point-read load generator for the MySQL bench (wirecache.bench.mysql).
 *
 * Each client thread opens its own connection, waits at a barrier, then runs
 * "SELECT id, k, v FROM bench_items WHERE id = N" with N uniform in 1..HOT,
 * over the text protocol (COM_QUERY) or the binary protocol (one prepared
 * statement per connection, COM_STMT_EXECUTE), reading every row. Latency of
 * each statement in microseconds goes to LATFILE, one per line.
 *
 * usage: mysqlload HOST PORT USER PASSWORD DB text|prepared CLIENTS SECONDS TXNS HOT LATFILE
 *   SECONDS > 0: run that long; else TXNS statements per client.
 * prints: "transactions=T failed=F elapsed=S" (exit status 1 when F > 0; the
 * first failures of each client are described on stderr)
 */
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *host, *user, *password, *db;
static unsigned port;
static int prepared, seconds, txns, hot;
static pthread_barrier_t barrier;
static double deadline;

typedef struct {
  int index;
  long *lat;
  long n, cap, failed;
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
  w->lat[w->n++] = us;
}

static void *run(void *arg) {
  worker_t *w = arg;
  unsigned seed = 12345u + w->index * 7919u;
  MYSQL *conn = mysql_init(NULL);
  unsigned int ssl = 0;
  mysql_optionsv(conn, MYSQL_OPT_SSL_ENFORCE, &ssl);
  my_bool verify = 0;
  mysql_optionsv(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
  MYSQL_STMT *stmt = NULL;
  int id = 0;
  MYSQL_BIND param;
  if (!mysql_real_connect(conn, host, user, password, db, port, NULL, 0)) {
    fprintf(stderr, "connect: %s\n", mysql_error(conn));
    pthread_barrier_wait(&barrier);
    return NULL;
  }
  if (prepared) {
    const char *q = "SELECT id, k, v FROM bench_items WHERE id = ?";
    stmt = mysql_stmt_init(conn);
    if (mysql_stmt_prepare(stmt, q, strlen(q))) {
      fprintf(stderr, "prepare: %s\n", mysql_stmt_error(stmt));
      pthread_barrier_wait(&barrier);
      return NULL;
    }
    memset(&param, 0, sizeof param);
    param.buffer_type = MYSQL_TYPE_LONG;
    param.buffer = &id;
    mysql_stmt_bind_param(stmt, &param);
  }
  w->ok = 1;
  pthread_barrier_wait(&barrier);
  char sql[128];
  for (long done = 0;; done++) {
    if (seconds > 0 ? (done % 16 == 0 && now() >= deadline) : done >= txns) break;
    id = 1 + rand_r(&seed) % hot;
    double t0 = now();
    int bad;
    if (prepared) {
      bad = mysql_stmt_execute(stmt) ? 1 : mysql_stmt_store_result(stmt) ? 2 : 0;
      mysql_stmt_free_result(stmt);
    } else {
      int len = snprintf(sql, sizeof sql, "SELECT id, k, v FROM bench_items WHERE id = %d", id);
      bad = mysql_real_query(conn, sql, len);
      if (!bad) {
        MYSQL_RES *res = mysql_store_result(conn);
        if (res) mysql_free_result(res); else bad = 1;
      }
    }
    if (bad && w->failed++ < 3)
      fprintf(stderr, "client %d: %s id %d: %u %s\n", w->index,
              bad == 1 ? "execute" : "store", id,
              prepared ? mysql_stmt_errno(stmt) : mysql_errno(conn),
              prepared ? mysql_stmt_error(stmt) : mysql_error(conn));
    record(w, (long)((now() - t0) * 1e6));
  }
  if (stmt) mysql_stmt_close(stmt);
  mysql_close(conn);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 12) {
    fprintf(stderr, "usage: %s HOST PORT USER PASSWORD DB text|prepared CLIENTS SECONDS TXNS HOT LATFILE\n", argv[0]);
    return 2;
  }
  host = argv[1]; port = atoi(argv[2]); user = argv[3]; password = argv[4]; db = argv[5];
  prepared = strcmp(argv[6], "prepared") == 0;
  int clients = atoi(argv[7]);
  seconds = atoi(argv[8]); txns = atoi(argv[9]); hot = atoi(argv[10]);
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
  long total = 0, failed = 0;
  FILE *out = fopen(argv[11], "w");
  for (int i = 0; i < clients; i++) {
    pthread_join(t[i], NULL);
    if (!w[i].ok) { fprintf(stderr, "client %d did not run\n", i); return 1; }
  }
  double elapsed = now() - start;
  for (int i = 0; i < clients; i++) {
    for (long j = 0; j < w[i].n; j++) fprintf(out, "%ld\n", w[i].lat[j]);
    total += w[i].n;
    failed += w[i].failed;
  }
  fclose(out);
  printf("transactions=%ld failed=%ld elapsed=%.6f\n", total, failed, elapsed);
  mysql_library_end();
  return failed ? 1 : 0;
}
