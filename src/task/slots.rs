//! Slot admission: which queued task may start now. Pure, so the policy is tested on its own.
//!
//! - At most `max_slots` tasks run at once; the rest wait in arrival order (FIFO).
//! - Two turns of the same task never run at once: a follow-up resumes the Claude session the
//!   earlier turn is still writing, so it waits for it. Later tasks of other ids may go first.

/// Index into `queued_task_ids` of the next task to start, if any.
pub fn next_to_start(
    max_slots: usize,
    running_task_ids: &[i64],
    queued_task_ids: &[i64],
) -> Option<usize> {
    if running_task_ids.len() >= max_slots {
        return None;
    }
    queued_task_ids
        .iter()
        .position(|id| !running_task_ids.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_in_arrival_order_until_slots_are_full() {
        assert_eq!(next_to_start(2, &[], &[7, 8, 9]), Some(0));
        assert_eq!(next_to_start(2, &[7], &[8, 9]), Some(0));
        assert_eq!(next_to_start(2, &[7, 8], &[9]), None);
        assert_eq!(next_to_start(5, &[1, 2, 3, 4], &[]), None);
    }

    #[test]
    fn a_follow_up_waits_for_its_own_task_but_blocks_no_one_else() {
        assert_eq!(next_to_start(5, &[7], &[7, 8]), Some(1));
        assert_eq!(next_to_start(5, &[7], &[7, 7]), None);
    }
}
