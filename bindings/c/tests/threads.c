/*
 * Plan one spec from 8 threads at once (libdevaddr keeps no global mutable state) and
 * check that every thread got the same plan; print it (JSON) for the test to compare
 * with the CLI's.  Usage: threads SPEC
 */
#include "devaddr.h"
#include "read_file.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define THREADS 8

struct job {
  const char *spec;
  const char *name;
  char *plan; /* the output (strdup'd), or NULL when the call failed */
};

static void *plan_one(void *arg) {
  struct job *job = arg;
  DevaddrOptions opts = {0};
  opts.name = job->name;
  DevaddrResult *r = devaddr_plan(job->spec, "json", NULL, &opts);
  if (devaddr_result_status(r) == DEVADDR_OK)
    job->plan = strdup(devaddr_result_output(r));
  else
    fprintf(stderr, "%s", devaddr_result_error_text(r));
  devaddr_result_free(r);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fputs("usage: threads SPEC\n", stderr);
    return 3;
  }
  char *spec = read_file(argv[1]);
  struct job jobs[THREADS];
  pthread_t tids[THREADS];
  for (int i = 0; i < THREADS; i++) {
    jobs[i] = (struct job){spec, argv[1], NULL};
    if (pthread_create(&tids[i], NULL, plan_one, &jobs[i]) != 0) {
      perror("pthread_create");
      return 3;
    }
  }
  for (int i = 0; i < THREADS; i++)
    pthread_join(tids[i], NULL);
  int bad = 0;
  for (int i = 0; i < THREADS; i++) {
    if (!jobs[i].plan) {
      fprintf(stderr, "thread %d: no plan\n", i);
      bad = 1;
    } else if (jobs[0].plan && strcmp(jobs[i].plan, jobs[0].plan) != 0) {
      fprintf(stderr, "thread %d planned differently from thread 0\n", i);
      bad = 1;
    }
  }
  if (!bad)
    fputs(jobs[0].plan, stdout);
  for (int i = 0; i < THREADS; i++)
    free(jobs[i].plan);
  free(spec);
  return bad;
}
