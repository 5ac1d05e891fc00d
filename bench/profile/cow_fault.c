// What fork costs on this machine, without Python: fork + _exit + waitpid of
// a process with 20 MB of touched anonymous memory, then with 500
// copy-on-write faults in the child, with MADV_POPULATE_WRITE instead, and
// with 500 reads. Build: gcc -O2 -o /tmp/cow_fault bench/profile/cow_fault.c
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  size_t mb = 20, n = mb<<20, pages = n/4096; int reps = 200;
  char* p = mmap(0,n,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  memset(p,1,n);
  for (int mode=0; mode<4; mode++){
    double t0=now();
    for(int r=0;r<reps;r++){
      pid_t pid=fork();
      if(!pid){
        if(mode==1) for(size_t i=0;i<500;i++) p[(i*37%pages)*4096]=2;          /* 500 CoW faults */
        if(mode==2) madvise(p, 500*4096, MADV_POPULATE_WRITE);                   /* 500 pages, one call */
        if(mode==3) for(size_t i=0;i<500;i++) { volatile char c = p[(i*37%pages)*4096]; (void)c; } /* reads only */
        _exit(0);
      }
      waitpid(pid,0,0);
    }
    double dt=(now()-t0)/reps*1e6;
    const char* names[]={"fork+exit (20 MB touched parent)","+500 CoW write faults","+MADV_POPULATE_WRITE 500 pages","+500 reads (no fault)"};
    printf("%-36s %7.0f us per child\n", names[mode], dt);
  }
}
