"""The use cases the Lambda handlers call, one module per area; each takes its AWS wrappers as arguments.

- ``ingest.start_run``                    S3 "Object Created" -> run record + execution (idempotent)
- ``dataset.validate_dataset``            validate and split the data set
- ``training.plan_training``              CreateTrainingJob / CreateModelCustomizationJob request
- ``evaluation.plan_evaluation``          CreateProcessingJob request
- ``evaluation.evaluate``                 metrics of base and fine-tuned model, evaluation.json, report.html
- ``registry.register_model``             model package version with lineage and metrics (idempotent)
- ``registry.quality_gate``               threshold and champion comparison
- ``approval.request_approval``           store the task token, notify
- ``approval.decide_approval``            approve / reject through the API (exactly one decision wins)
- ``deployment.deploy_model``             SageMaker model + endpoint config + endpoint, or Bedrock throughput
- ``completion.complete_run``             run SUCCEEDED, notify
- ``completion.handle_failure``           run FAILED, clean up, notify, readable cause
"""
