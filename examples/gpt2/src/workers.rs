//! The threads a model's products are split across.

use std::sync::Arc;

use crate::{Gpt2Error, Result};

/// The threads of a model that runs on `n`: the calling thread and a pool
/// of `n - 1` more, started once with the model. A cached step splits
/// about fifty products; handing each part to a waiting thread costs a
/// wake-up, where starting and joining a thread per part cost more than
/// the part itself on small models.
#[derive(Debug, Clone, Default)]
pub(crate) struct Workers {
    /// `None` on one thread.
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Workers {
    /// The calling thread and `threads - 1` pool threads (none for 0 or 1).
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Threads`] when the operating system refuses the
    /// threads.
    pub(crate) fn new(threads: usize) -> Result<Self> {
        if threads <= 1 {
            return Ok(Self::default());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads - 1)
            .thread_name(|i| format!("gpt2-worker-{i}"))
            .build()
            .map_err(|e| Gpt2Error::Threads { threads, message: e.to_string() })?;
        Ok(Self { pool: Some(Arc::new(pool)) })
    }

    /// The threads a split runs on, the calling thread included.
    pub(crate) fn count(&self) -> usize {
        self.pool.as_ref().map_or(1, |pool| pool.current_num_threads() + 1)
    }

    /// Runs every task and returns when all are done: the first on the
    /// calling thread, the others on the pool (all on the calling thread
    /// when there is none).
    pub(crate) fn run<T: FnOnce() + Send>(&self, tasks: impl IntoIterator<Item = T>) {
        let mut tasks = tasks.into_iter();
        let first = tasks.next();
        match &self.pool {
            None => first.into_iter().chain(tasks).for_each(|task| task()),
            Some(pool) => pool.in_place_scope(|scope| {
                for task in tasks {
                    scope.spawn(move |_| task());
                }
                if let Some(task) = first {
                    task();
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_task_runs_once_on_the_named_number_of_threads() {
        for threads in [0, 1, 2, 3] {
            let workers = Workers::new(threads).unwrap();
            assert_eq!(workers.count(), threads.max(1));
            let seen = Mutex::new(Vec::new());
            let mut outputs = vec![0usize; 7];
            workers.run(outputs.iter_mut().enumerate().map(|(i, out)| {
                let seen = &seen;
                move || {
                    *out = i * i;
                    seen.lock().unwrap().push(std::thread::current().id());
                }
            }));
            assert_eq!(outputs, [0, 1, 4, 9, 16, 25, 36]);
            let mut ids = seen.into_inner().unwrap();
            assert_eq!(ids.len(), 7);
            ids.sort_by_key(|id| format!("{id:?}"));
            ids.dedup();
            assert!(ids.len() <= threads.max(1), "{threads} threads: {} ran tasks", ids.len());
        }
    }
}
